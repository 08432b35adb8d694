"""Validation of an event's data (``dispatcher/contract/validation.py``): the normalized copy
that is sent, the caller's data left alone, an unknown event refused before its data is looked
at, and one error naming every bad field by its path."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.events import MessageCreated, OrderChanged
from dispatcher.contract.validation import validate, validated_model
from dispatcher.errors import InvalidEventData, UnknownEvent

from .seed_data import REQUIRED_FIELDS, SEED_EXAMPLES, SEED_FIELDS, problems_of, seed

# --- the seed examples -----------------------------------------------------------------------


@pytest.mark.parametrize("event", list(SEED_EXAMPLES))
def test_example_validates_to_itself(event: str) -> None:
    example = CATALOGUE[event].example()
    assert validate(event, example) == example


@pytest.mark.parametrize("event", list(SEED_EXAMPLES))
def test_seed_example_validates_unchanged_with_keys_in_catalogue_order(event: str) -> None:
    clean = validate(event, seed(event))
    assert clean == SEED_EXAMPLES[event]
    assert list(clean) == [name for name, _type, _nullable in SEED_FIELDS[event]]


def test_validate_does_not_modify_the_callers_data() -> None:
    data = seed("prescription_submitted")
    data["created_at"] = "2026-01-30T14:00:00+02:00"
    del data["order_number"]
    before = copy.deepcopy(data)
    clean = validate("prescription_submitted", data)
    assert data == before
    assert clean["created_at"] == "2026-01-30T12:00:00Z"
    assert clean["order_number"] is None


# --- unknown events, error classes -----------------------------------------------------------


def test_error_classes_are_value_errors() -> None:
    assert issubclass(UnknownEvent, ValueError)
    assert issubclass(InvalidEventData, ValueError)


def test_validate_unknown_event_raises_unknown_event() -> None:
    with pytest.raises(UnknownEvent, match="prescription_cancelled"):
        validate("prescription_cancelled", seed("order_changed"))


def test_unknown_event_is_reported_before_the_data_is_looked_at() -> None:
    with pytest.raises(UnknownEvent):
        validate("nope", "not even a dict")


# --- unknown, missing and null fields --------------------------------------------------------


def test_unknown_top_level_field_is_rejected() -> None:
    data = seed("order_changed")
    data["shipped"] = True
    error = problems_of("order_changed", data)
    assert error.problems == ["shipped: unknown field"]


def test_unknown_medication_field_is_rejected_by_path() -> None:
    data = seed("prescription_submitted")
    data["medication"][0]["strength"] = "10mg"
    error = problems_of("prescription_submitted", data)
    assert error.problems == ["medication[0].strength: unknown field"]


@pytest.mark.parametrize(("event", "field"), REQUIRED_FIELDS)
def test_missing_required_field_is_rejected(event: str, field: str) -> None:
    data = seed(event)
    del data[field]
    error = problems_of(event, data)
    assert error.problems == [f"{field}: required field is missing"]


@pytest.mark.parametrize(("event", "field"), REQUIRED_FIELDS)
def test_null_in_required_field_is_rejected(event: str, field: str) -> None:
    data = seed(event)
    data[field] = None
    error = problems_of(event, data)
    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"{field}: must not be null")


@pytest.mark.parametrize("field", ["quantity", "directions", "prescribed_item_id", "medication"])
def test_missing_required_medication_field_is_rejected_by_path(field: str) -> None:
    data = seed("prescription_dosage_changed")
    del data["medication"][0][field]
    error = problems_of("prescription_dosage_changed", data)
    assert error.problems == [f"medication[0].{field}: required field is missing"]


def test_empty_data_names_every_required_field() -> None:
    error = problems_of("encounter_cancelled", {})
    assert [p.split(":")[0] for p in error.problems] == [
        "patient_id",
        "encounter_id",
        "reason",
        "cancel_by_name",
        "cancel_by_id",
        "created_at",
    ]


# --- error messages --------------------------------------------------------------------------


def test_message_names_every_bad_field_by_path_in_one_error() -> None:
    data = seed("prescription_submitted")
    second = copy.deepcopy(data["medication"][0])
    data["medication"][0]["quantity"] = "1"
    second["directions"] = 5
    data["medication"].append(second)
    data["medication"].append("not an object")
    del data["patient_id"]
    data["colour"] = "blue"

    error = problems_of("prescription_submitted", data)
    message = str(error)

    assert message.startswith("invalid data for event 'prescription_submitted': ")
    for path in (
        "medication[0].quantity",
        "medication[1].directions",
        "medication[2]",
        "patient_id",
        "colour",
    ):
        assert path in message
    assert sorted(p.split(":")[0] for p in error.problems) == sorted(
        ["colour", "patient_id", "medication[0].quantity", "medication[1].directions", "medication[2]"]
    )
    assert message.count(";") == len(error.problems) - 1
    assert "'1'" in message  # the offending value is shown
    assert "an integer" in message  # and what was expected


def test_medication_item_that_is_not_an_object_is_named_by_index() -> None:
    data = seed("prescription_submitted")
    data["medication"] = [data["medication"][0], 7]
    error = problems_of("prescription_submitted", data)
    assert len(error.problems) == 1
    assert error.problems[0].startswith("medication[1]: expected an object")


def test_empty_medication_list_is_an_array() -> None:
    data = seed("prescription_submitted")
    data["medication"] = []
    assert validate("prescription_submitted", data)["medication"] == []


@pytest.mark.parametrize("data", [None, [], "order", 1, [("order_number", "x")]])
def test_data_that_is_not_a_dict_is_rejected(data: object) -> None:
    error = problems_of("order_changed", data)
    assert len(error.problems) == 1
    assert error.problems[0].startswith("data: expected an object")


# --- an event given as a model ---------------------------------------------------------------


def test_an_event_given_as_a_model_is_its_data_if_every_value_is_portable_json() -> None:
    instance = OrderChanged(
        order_number="ORDER123", status="updated", created_at=datetime(2026, 1, 30, 12, tzinfo=UTC)
    )
    assert validated_model(instance) == {
        "order_number": "ORDER123",
        "status": "updated",
        "created_at": "2026-01-30T12:00:00Z",
    }
    lone = OrderChanged(order_number="A\ud800", status="updated", created_at="2026-01-30T12:00:00Z")
    with pytest.raises(InvalidEventData) as caught:
        validated_model(lone)
    assert caught.value.event == "order_changed"
    assert [p.split(":")[0] for p in caught.value.problems] == ["order_number"]
    nan = MessageCreated(**{**seed("message_created"), "attachment": [{"score": float("nan")}]})
    with pytest.raises(InvalidEventData, match=r"attachment\[0\]\.score: float nan is not a JSON number"):
        validated_model(nan)
