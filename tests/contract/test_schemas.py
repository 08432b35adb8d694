"""The contract as documents (dispatcher.contract.schemas and .openapi): valid JSON Schema and
OpenAPI 3.1, every example they carry (the seed's, with a real request_id) valid against them
with formats checked, and what the sender really sends too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from openapi_spec_validator import validate as validate_openapi

from dispatcher.cli import cli
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.openapi import openapi_document
from dispatcher.contract.schemas import (
    EXAMPLE_REQUEST_ID,
    METADATA_NAME,
    data_name,
    event_schema,
    example_payload,
    webhook_name,
)
from tests.conftest import ROOT

from .published import FORMATS, body_validator, every_published_example, openapi_validators

SEED_TEXT = ROOT.parent / "shared" / "seed" / "outgoing-webhooks-api.txt"
CONTRACT_COPY = ROOT / "docs" / "outgoing-webhooks-api.txt"
EXAMPLES = list(every_published_example())


def validator(event: str, formats: bool = False) -> jsonschema.Draft202012Validator:
    schema = event_schema(event)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS if formats else None)


def test_the_openapi_document_is_valid_openapi_3_1_in_yaml_and_json() -> None:
    validate_openapi(openapi_document())
    runner = CliRunner()
    as_yaml = yaml.safe_load(runner.invoke(cli, ["schema", "--openapi"]).output)
    as_json = json.loads(runner.invoke(cli, ["schema", "--openapi", "--format", "json"]).output)
    assert as_yaml == as_json == openapi_document()
    assert list(as_json["webhooks"]) == list(CATALOGUE)


def test_each_webhook_documents_the_key_header_and_what_each_answer_does() -> None:
    for webhook in openapi_document()["webhooks"].values():
        post = webhook["post"]
        key = next(p for p in post["parameters"] if p["name"] == "X-Webhook-Key")
        assert key["in"] == "header" and key["required"] is True
        assert {p["name"] for p in post["parameters"]} >= {
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
        }
        assert set(post["responses"]) >= {"2XX", "4XX", "5XX", "410", "429"}
        assert "retried" in post["responses"]["5XX"]["description"]


def test_format_checking_is_really_on() -> None:
    """The seed's placeholder ``"uuid"`` and an impossible date fail once formats are checked:
    without this, every check below would pass whatever the formats said."""
    assert not FORMATS.conforms("uuid", "uuid") and FORMATS.conforms(EXAMPLE_REQUEST_ID, "uuid")
    assert not FORMATS.conforms("2026-02-30T12:00:00Z", "date-time")
    assert not FORMATS.conforms("timestamp", "date-time")
    placeholder = example_payload(CATALOGUE["order_changed"])
    placeholder["metadata"]["request_id"] = "uuid"
    impossible = example_payload(CATALOGUE["order_changed"])
    impossible["data"]["created_at"] = "2026-02-30T12:00:00Z"
    for body, field in ((placeholder, "request_id"), (impossible, "created_at")):
        assert validator("order_changed").is_valid(body), "the schema alone takes it"
        (error,) = body_validator("order_changed").iter_errors(body)
        assert list(error.path)[-1] == field
        for checked in openapi_validators("order_changed"):
            assert not checked.is_valid(body)


@pytest.mark.parametrize(("where", "checker", "example"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_published_example_is_valid_with_formats_checked(where: str, checker, example) -> None:
    assert list(checker.iter_errors(example)) == [], where


def test_the_examples_cover_each_event_its_data_and_the_metadata() -> None:
    places = [where for where, _checker, _example in EXAMPLES]
    for event, model in CATALOGUE.items():
        assert f"{event}.json#" in places, "the body's own example"
        assert f"{event}.json#/$defs/{data_name(model)}" in places
        assert f"openapi#/components/schemas/{webhook_name(model)}" in places
        assert f"openapi webhooks.{event} example seed" in places
    assert f"openapi#/components/schemas/{METADATA_NAME}" in places


@pytest.mark.parametrize("event", list(CATALOGUE))
def test_the_example_payload_is_the_one_in_both_documents(event: str) -> None:
    payload = example_payload(CATALOGUE[event])
    assert payload["metadata"]["request_id"] == EXAMPLE_REQUEST_ID
    assert event_schema(event)["examples"] == [payload]
    media = openapi_document()["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]
    assert media["examples"]["seed"]["value"] == payload


def test_the_examples_are_the_seed_documents_own_but_for_the_request_id() -> None:
    """The contract copied into docs/ shows the six examples published here, word for word but
    for the seed's placeholder ``"request_id": "uuid"``."""
    text = CONTRACT_COPY.read_text()
    blocks = [json.loads(b) for b in re.findall(r"^JSON\n(\{.*?^\})", text, re.S | re.M)]
    assert [b["metadata"].pop("request_id") for b in blocks] == ["uuid"] * 6
    published = [example_payload(model) for model in CATALOGUE.values()]
    for payload in published:
        payload["metadata"].pop("request_id")
    assert blocks == published


@pytest.mark.skipif(not SEED_TEXT.exists(), reason="the seed document is not beside this checkout")
def test_docs_holds_the_seed_contract_verbatim() -> None:
    assert CONTRACT_COPY.read_bytes() == SEED_TEXT.read_bytes()


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda p: p["data"]["medication"][0].update(quantity="1"), "quantity"),
        (lambda p: p["data"].update(colour="blue"), "colour"),
        (lambda p: p["data"].pop("order_number"), "order_number"),
        (lambda p: p["metadata"].pop("request_id"), "request_id"),
        (lambda p: p.update(event="order_changed"), "event"),
        (lambda p: p["data"].update(created_at="2026-01-30T12:00:00+02:00"), "created_at"),
    ],
)
def test_the_schema_refuses_what_the_sender_never_sends(change, where: str) -> None:
    body = example_payload(CATALOGUE["prescription_submitted"])
    change(body)
    with pytest.raises(jsonschema.ValidationError) as caught:
        validator("prescription_submitted").validate(body)
    assert where in str(caught.value.path) + caught.value.message


def test_a_partner_can_check_what_the_sender_really_sends(make_runtime, receiver) -> None:
    """Bodies a real worker POSTed, every event, with and without the key in the body, pass the
    schema with formats checked (a real uuid4, a real UTC timestamp)."""
    from dispatcher import dispatch
    from tests.worker.test_flight import deliver

    make_runtime(
        endpoints=[
            {"name": "plain", "url": receiver.url, "key": "k-plain-1"},
            {"name": "in-body", "url": receiver.url, "key": "k-body-1", "include_key_in_body": True},
        ]
    )
    for event, model in CATALOGUE.items():
        for request_id in dispatch(event, model.example()):
            deliver(request_id)
    bodies = [r.body for r in receiver.received]
    assert len(bodies) == 12 and sum("webhook_key" in b["metadata"] for b in bodies) == 6
    for body in bodies:
        validator(body["event"], formats=True).validate(body)


def test_dispatcher_schema_prints_an_events_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "order_changed"])
    assert result.exit_code == 0 and json.loads(result.output) == event_schema("order_changed")
    usage = CliRunner().invoke(cli, ["schema"])
    assert usage.exit_code == 2 and "give an EVENT, or --openapi" in usage.output
