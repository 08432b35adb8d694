"""The schemas of the API's OpenAPI document take what the API takes and refuse what it refuses:
each event's data as the contract has it (its nullable fields left out too), an event's body
only with its own data, every integer within I-JSON; a new endpoint as the file writes it, a
merge patch naming only settings; every refusal as :class:`ApiProblem` writes it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from dispatcher.api import idempotency
from dispatcher.api.openapi_schemas import IDEMPOTENCY_KEY, components, event_data_schemas
from dispatcher.api.problems import ApiProblem, FieldError, invalid
from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.json_safety import MAX_SAFE_INTEGER
from dispatcher.contract.schemas import data_name

COMPONENTS = {"schemas": components()}


def errors(name: str, instance: Any) -> list[str]:
    """What the component ``name`` finds wrong with ``instance`` (formats checked)."""
    root = {"components": COMPONENTS, "$ref": f"#/components/schemas/{name}"}
    found = Draft202012Validator(root, format_checker=FormatChecker()).iter_errors(instance)
    return [error.message for error in found]


def refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(refs(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(refs(item) for item in value))
    return set()


def test_every_reference_names_a_schema_of_the_document() -> None:
    named = {f"#/components/schemas/{name}" for name in COMPONENTS["schemas"]}
    assert refs(COMPONENTS) - named == set()
    json.dumps(COMPONENTS)  # plain JSON, as served


@pytest.mark.parametrize("event", sorted(CATALOGUE))
def test_each_events_example_is_a_valid_request(event: str) -> None:
    data = CATALOGUE[event].example()
    assert errors(data_name(CATALOGUE[event]), data) == []
    assert errors("Event", {"event": event, "data": data, "dispatched_by": "pharmacy-app"}) == []
    batch = {"events": [{"event": event, "data": data}] * 3}
    assert errors("EventBatch", batch) == []


def test_a_field_sent_as_null_may_be_left_out_of_a_request() -> None:
    model = CATALOGUE["prescription_submitted"]
    data = model.example()
    for name in ("order_number", "special_necessities"):
        del data[name]
    del data["medication"][0]["rx_order_id"]
    assert errors("Event", {"event": model.event, "data": data}) == []
    del data["patient_id"]
    assert errors("Event", {"event": model.event, "data": data}) != []


def test_an_events_body_takes_only_its_own_data_and_known_fields() -> None:
    order = CATALOGUE["order_changed"].example()
    assert errors("Event", {"event": "encounter_cancelled", "data": order}) != []
    assert errors("Event", {"event": "order_changed", "data": order, "colour": "red"}) != []
    assert errors("Event", {"event": "order_changed", "data": order, "endpoints": ["a", "a"]}) != []
    assert errors("EventBatch", {"events": []}) != []


def test_every_integer_of_event_data_is_within_i_json() -> None:
    schemas = event_data_schemas(CATALOGUE["prescription_submitted"])
    quantity = schemas["Medication"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    data = CATALOGUE["prescription_submitted"].example()
    data["medication"][0]["quantity"] = MAX_SAFE_INTEGER + 1
    assert errors("PrescriptionSubmittedData", data) != []


def test_a_problem_as_the_api_writes_it_is_a_problem_of_the_document() -> None:
    written = [
        ApiProblem(401, "send an API token").document(),
        ApiProblem(404).document(),
        invalid([FieldError("events[3].data.order_number", "expected a string, got int 5")]).document(),
    ]
    for document in written:
        assert errors("Problem", document) == []
    assert errors("Problem", {"title": "Not Found", "status": 404}) != []


def test_a_new_endpoint_is_the_files_endpoint() -> None:
    endpoint = {"name": "pharmacy", "url": "https://pharmacy.example/hook", "events": ["order_changed"]}
    assert errors("Endpoint", endpoint) == []
    assert errors("Endpoint", {**endpoint, "colour": "red"}) != []
    assert errors("Endpoint", {"url": endpoint["url"]}) != []
    assert errors("Endpoint", {**endpoint, "name": "x" * 201}) != []


def test_a_merge_patch_names_settings_only() -> None:
    assert errors("EndpointPatch", {"max_attempts": 3, "key": None, "headers": {"X-A": "1"}}) == []
    assert errors("EndpointPatch", {"headers.X-A": "1"}) != []
    assert errors("EndpointPatch", {"colour": "red"}) != []


def test_the_idempotency_key_header_is_as_long_as_the_api_takes() -> None:
    assert IDEMPOTENCY_KEY["name"] == idempotency.HEADER
    assert IDEMPOTENCY_KEY["schema"]["maxLength"] == idempotency.MAX_KEY_CHARS
    schema = copy.deepcopy(IDEMPOTENCY_KEY["schema"])
    check = Draft202012Validator(schema).is_valid
    assert check("5f3c9a1e-7b2d-4c8e-9a6f-1d2e3b4c5a6f")
    assert not check(" padded ") and not check("") and not check("k" * 251)
