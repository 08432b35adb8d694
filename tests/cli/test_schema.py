"""``dispatcher schema`` in-process (click's runner): an event's JSON Schema that the body the
sender builds passes, the OpenAPI document naming every event, and what the options refuse."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from dispatcher.contract import catalogue as events
from dispatcher.contract.wrapper import build
from dispatcher.vocabulary import EVENT_NAMES
from tests.cli.helpers import invoke


@pytest.mark.parametrize("event", EVENT_NAMES)
def test_an_events_schema_takes_the_body_the_sender_builds_and_no_other_event(event: str) -> None:
    result = invoke("schema", event)
    assert result.exit_code == 0 and result.stderr == ""
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    body = build(
        event=event,
        timestamp="2026-01-30T12:00:00Z",
        data=events.CATALOGUE[event].example(),
        source="Baremeds",
        environment="test",
        request_id="00000000-0000-4000-8000-000000000001",
        dispatched_by="SYSTEM",
    )
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(body)) == []
    other = next(name for name in EVENT_NAMES if name != event)
    assert not validator.is_valid({**body, "event": other})


def test_the_openapi_document_names_every_event_in_yaml_by_default() -> None:
    as_yaml = invoke("schema", "--openapi")
    as_json = invoke("schema", "--openapi", "--format", "json")
    assert as_yaml.exit_code == 0 and as_json.exit_code == 0
    document = yaml.safe_load(as_yaml.stdout)
    assert document["openapi"].startswith("3.1")
    assert sorted(document["webhooks"]) == sorted(EVENT_NAMES)
    assert as_yaml.stdout.lstrip()[0] != "{" and as_json.stdout.lstrip()[0] == "{"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("order_changed", "--openapi"), "give an EVENT, or --openapi for every event"),
        (("order_changed", "--format", "yaml"), "--format applies to --openapi; an event's schema is JSON"),
        (("--openapi", "--format", "xml"), "'--format'"),
        (("order_shipped",), "order_shipped"),
    ],
)
def test_what_the_options_refuse_is_a_usage_error(args: tuple[str, ...], message: str) -> None:
    result = invoke("schema", *args)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr
