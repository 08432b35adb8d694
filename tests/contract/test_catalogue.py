"""The event catalogue against the seed contract, and strict validation of event data."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dispatcher.contract.catalogue import CATALOGUE, field_table, get_event
from dispatcher.contract.events import Medication
from dispatcher.contract.validation import validate
from dispatcher.errors import InvalidEventData, UnknownEvent
from dispatcher.vocabulary import EVENT_NAMES

# The `data` of each example payload in ../shared/seed/outgoing-webhooks-api.txt, copied verbatim.
SEED_EXAMPLES: dict[str, dict] = {
    "prescription_submitted": {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "order_number": None,
        "medication": [
            {
                "quantity": 1,
                "directions": "Take 1 tablet daily",
                "prescribed_item_id": "prx_rx_id",
                "rx_order_id": None,
                "medication": "Medication Name",
            }
        ],
        "created_at": "2026-01-30T12:00:00Z",
        "special_necessities": "optional notes",
    },
    "prescription_dosage_changed": {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "order_number": None,
        "medication": [
            {
                "quantity": 1,
                "directions": "Updated directions",
                "prescribed_item_id": "prx_rx_id",
                "rx_order_id": None,
                "medication": "Medication Name",
            }
        ],
        "dosage_change": True,
        "created_at": "2026-01-30T12:00:00Z",
    },
    "encounter_cancelled": {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "reason": "Cancellation reason",
        "cancel_by_name": "Provider Name",
        "cancel_by_id": "provider_id",
        "created_at": "2026-01-30T12:00:00Z",
    },
    "message_created": {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "author_id": "author_id",
        "is_doctor": True,
        "reply_message_id": None,
        "channel": "patient",
        "message": "Hello from clinician",
        "attachment": [],
        "created_at": "2026-01-30T12:00:00Z",
    },
    "order_changed": {
        "order_number": "ORDER123",
        "status": "updated",
        "created_at": "2026-01-30T12:00:00Z",
    },
    "case_assigned_to_clinician": {
        "encounter_id": "encounter_id",
        "patient_id": "patient_unique_id",
        "clinician_id": "provider_id",
        "assigned_at": "2026-01-30T12:00:00Z",
    },
}

# The seed's "Data Fields" tables: (name, type, nullable), in the seed's order.
SEED_FIELDS: dict[str, list[tuple[str, str, bool]]] = {
    "prescription_submitted": [
        ("patient_id", "string", False),
        ("encounter_id", "string", False),
        ("order_number", "string", True),
        ("medication", "array", False),
        ("created_at", "datetime", False),
        ("special_necessities", "string", True),
    ],
    "prescription_dosage_changed": [
        ("patient_id", "string", False),
        ("encounter_id", "string", False),
        ("order_number", "string", True),
        ("medication", "array", False),
        ("dosage_change", "boolean", False),
        ("created_at", "datetime", False),
    ],
    "encounter_cancelled": [
        ("patient_id", "string", False),
        ("encounter_id", "string", False),
        ("reason", "string", False),
        ("cancel_by_name", "string", False),
        ("cancel_by_id", "string", False),
        ("created_at", "datetime", False),
    ],
    "message_created": [
        ("patient_id", "string", False),
        ("encounter_id", "string", False),
        ("author_id", "string", False),
        ("is_doctor", "boolean", False),
        ("reply_message_id", "string", True),
        ("channel", "string", False),
        ("message", "string", False),
        ("attachment", "array", False),
        ("created_at", "datetime", False),
    ],
    "order_changed": [
        ("order_number", "string", False),
        ("status", "string", False),
        ("created_at", "datetime", False),
    ],
    "case_assigned_to_clinician": [
        ("encounter_id", "string", False),
        ("patient_id", "string", False),
        ("clinician_id", "string", False),
        ("assigned_at", "datetime", False),
    ],
}

SEED_MEDICATION_FIELDS = [
    ("quantity", "integer", False),
    ("directions", "string", False),
    ("prescribed_item_id", "string", False),
    ("rx_order_id", "string", True),
    ("medication", "string", False),
]

# (event, field) for every String | null field in the seed.
NULLABLE_FIELDS = [
    ("prescription_submitted", "order_number"),
    ("prescription_submitted", "special_necessities"),
    ("prescription_dosage_changed", "order_number"),
    ("message_created", "reply_message_id"),
]

# (event, field) for every field that is not nullable, at the top level.
REQUIRED_FIELDS = [
    (event, name) for event, fields in SEED_FIELDS.items() for name, _type, nullable in fields if not nullable
]


def seed(event: str) -> dict:
    """A deep copy of the seed's example data, safe to modify."""
    return copy.deepcopy(SEED_EXAMPLES[event])


def order(created_at: object) -> dict:
    return {"order_number": "ORDER123", "status": "updated", "created_at": created_at}


def problems_of(event: str, data: object) -> InvalidEventData:
    with pytest.raises(InvalidEventData) as caught:
        validate(event, data)
    return caught.value


# --- the catalogue ---------------------------------------------------------------------------


def test_catalogue_has_exactly_the_six_seed_events_in_seed_order() -> None:
    assert list(EVENT_NAMES) == list(SEED_EXAMPLES)
    assert list(CATALOGUE) == list(SEED_EXAMPLES)


SEED_WORDS = {
    "String": "string",
    "Integer": "integer",
    "Boolean": "boolean",
    "ISO 8601": "datetime",
    "Array": "array",
}


def seed_table(model) -> list[tuple[str, str, bool]]:
    return [(name, SEED_WORDS[kind], nullable) for name, kind, nullable, _text in field_table(model)]


@pytest.mark.parametrize("event", list(SEED_FIELDS))
def test_each_event_has_the_seed_fields_with_their_types(event: str) -> None:
    model = CATALOGUE[event]
    assert model.event == event
    assert seed_table(model) == SEED_FIELDS[event]
    assert all(text for *_rest, text in field_table(model))


@pytest.mark.parametrize("event", ["prescription_submitted", "prescription_dosage_changed"])
def test_medication_items_have_the_seed_medication_object_fields(event: str) -> None:
    schema = CATALOGUE[event].model_json_schema()
    assert schema["properties"]["medication"]["items"] == {"$ref": "#/$defs/Medication"}
    assert seed_table(Medication) == SEED_MEDICATION_FIELDS


def test_attachment_items_are_not_typed_by_the_catalogue() -> None:
    attachment = CATALOGUE["message_created"].model_json_schema()["properties"]["attachment"]
    assert attachment["type"] == "array" and attachment["items"] == {}


def test_get_event_returns_the_catalogue_entry() -> None:
    assert get_event("order_changed") is CATALOGUE["order_changed"]


@pytest.mark.parametrize("name", ["order_shipped", "", "ORDER_CHANGED", None, 3])
def test_get_event_rejects_unknown_names(name: object) -> None:
    with pytest.raises(UnknownEvent) as caught:
        get_event(name)
    assert repr(name) in str(caught.value)
    assert "order_changed" in str(caught.value)  # the message lists the known events


# --- the seed examples -----------------------------------------------------------------------


@pytest.mark.parametrize("event", list(SEED_EXAMPLES))
def test_example_equals_the_seed_example(event: str) -> None:
    assert CATALOGUE[event].example() == SEED_EXAMPLES[event]


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


def test_example_returns_a_fresh_copy_each_time() -> None:
    first = CATALOGUE["message_created"].example()
    first["attachment"].append({"url": "https://files.example.com/a.pdf"})
    try:
        assert CATALOGUE["message_created"].example()["attachment"] == []
    finally:
        first["attachment"].clear()  # undo the leak so other tests see the seed's example


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


# --- strict types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        ("message_created", "is_doctor", "yes"),
        ("message_created", "is_doctor", "true"),
        ("message_created", "is_doctor", 1),
        ("message_created", "is_doctor", 0),
        ("prescription_dosage_changed", "dosage_change", "yes"),
        ("prescription_dosage_changed", "dosage_change", 1),
        ("order_changed", "status", 1),
        ("order_changed", "status", True),
        ("order_changed", "status", 1.5),
        ("order_changed", "status", ["updated"]),
        ("order_changed", "status", {"value": "updated"}),
        ("order_changed", "order_number", 123),
        ("message_created", "attachment", "file.pdf"),
        ("message_created", "attachment", {"url": "x"}),
        ("prescription_submitted", "medication", {"quantity": 1}),
        ("prescription_submitted", "order_number", 42),
        ("prescription_submitted", "special_necessities", False),
    ],
)
def test_wrong_types_are_rejected(event: str, field: str, value: object) -> None:
    data = seed(event)
    data[field] = value
    error = problems_of(event, data)
    assert error.event == event
    assert len(error.problems) == 1
    assert error.problems[0].startswith(f"{field}: expected ")
    assert field in str(error)


@pytest.mark.parametrize("value", ["1", True, False, 1.0, 1.5, None, [1]])
def test_quantity_must_be_an_integer(value: object) -> None:
    data = seed("prescription_submitted")
    data["medication"][0]["quantity"] = value
    error = problems_of("prescription_submitted", data)
    assert [p.split(":")[0] for p in error.problems] == ["medication[0].quantity"]


@pytest.mark.parametrize("value", [0, 2, 250, -1])
def test_any_int_is_an_integer(value: int) -> None:
    data = seed("prescription_submitted")
    data["medication"][0]["quantity"] = value
    assert validate("prescription_submitted", data)["medication"][0]["quantity"] == value


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_accepted_as_they_are(value: bool) -> None:
    data = seed("message_created")
    data["is_doctor"] = value
    assert validate("message_created", data)["is_doctor"] is value


def test_empty_string_is_a_string() -> None:
    data = seed("order_changed")
    data["status"] = ""
    assert validate("order_changed", data)["status"] == ""


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


@pytest.mark.parametrize(("event", "field"), NULLABLE_FIELDS)
def test_nullable_field_may_be_omitted_and_comes_back_as_none(event: str, field: str) -> None:
    data = seed(event)
    data[field] = "something"
    del data[field]
    clean = validate(event, data)
    assert field in clean
    assert clean[field] is None


@pytest.mark.parametrize(("event", "field"), NULLABLE_FIELDS)
def test_nullable_field_may_be_null_or_a_string(event: str, field: str) -> None:
    data = seed(event)
    data[field] = None
    assert validate(event, data)[field] is None
    data[field] = "value-123"
    assert validate(event, data)[field] == "value-123"


def test_omitted_nullable_medication_field_comes_back_as_none() -> None:
    data = seed("prescription_submitted")
    del data["medication"][0]["rx_order_id"]
    clean = validate("prescription_submitted", data)
    assert clean["medication"][0]["rx_order_id"] is None
    assert list(clean["medication"][0]) == [name for name, _t, _n in SEED_MEDICATION_FIELDS]


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


# --- timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-30T12:00:00Z", "2026-01-30T12:00:00Z"),
        ("2026-01-30T12:00:00+00:00", "2026-01-30T12:00:00Z"),
        ("2026-01-30T12:00:00+02:00", "2026-01-30T10:00:00Z"),
        ("2026-01-30T12:00:00-05:30", "2026-01-30T17:30:00Z"),
        ("2026-01-30T01:00:00+02:00", "2026-01-29T23:00:00Z"),  # crosses midnight
        ("2026-01-30T12:00:00.123456Z", "2026-01-30T12:00:00Z"),  # fraction dropped
        ("2026-01-30T12:00:00.9+02:00", "2026-01-30T10:00:00Z"),
    ],
)
def test_timestamp_strings_are_converted_to_utc_z(value: str, expected: str) -> None:
    assert validate("order_changed", order(value))["created_at"] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 30, 12, 0, 0, tzinfo=UTC), "2026-01-30T12:00:00Z"),
        (datetime(2026, 1, 30, 12, 0, 0, tzinfo=timezone(timedelta(hours=2))), "2026-01-30T10:00:00Z"),
        (datetime(2026, 1, 30, 12, 0, 0, tzinfo=timezone(timedelta(hours=-8))), "2026-01-30T20:00:00Z"),
        (datetime(2026, 1, 30, 12, 0, 0), "2026-01-30T12:00:00Z"),  # naive is UTC
        (datetime(2026, 1, 30, 12, 0, 0, 999999), "2026-01-30T12:00:00Z"),
    ],
)
def test_datetimes_are_converted_to_utc_z(value: datetime, expected: str) -> None:
    assert validate("order_changed", order(value))["created_at"] == expected


@pytest.fixture
def local_time_zone_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone set to UTC-5 / UTC-4, so "naive means local" would show."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_zone_not_utc")
def test_naive_datetime_is_utc_not_local_time() -> None:
    assert time.localtime(0).tm_hour != 0  # the zone change took effect
    clean = validate("order_changed", order(datetime(2026, 1, 30, 12, 0, 0)))
    assert clean["created_at"] == "2026-01-30T12:00:00Z"


def test_assigned_at_is_normalized_like_created_at() -> None:
    data = seed("case_assigned_to_clinician")
    data["assigned_at"] = datetime(2026, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    assert validate("case_assigned_to_clinician", data)["assigned_at"] == "2026-03-01T08:30:00Z"


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-30T12:00:00",  # no offset
        "2026-01-30T12:00:00.000000",  # no offset, long enough to look like one
        "2026-01-30 12:00:00+00:00",  # no T
        "2026-01-30",  # date only
        "2026-01-30Z",
        "2026-01-30T25:00:00Z",
        "2026-02-30T12:00:00Z",
        "not a timestamp at all, really",
        "garbage",
        "",
        1769774400,  # an epoch int
        1769774400.0,
        True,
        ["2026-01-30T12:00:00Z"],
    ],
)
def test_bad_timestamps_are_rejected(value: object) -> None:
    error = problems_of("order_changed", order(value))
    assert len(error.problems) == 1
    assert error.problems[0].startswith("created_at: expected an ISO 8601 timestamp")


def test_a_date_object_is_not_a_datetime() -> None:
    error = problems_of("order_changed", order(date(2026, 1, 30)))
    assert error.problems[0].startswith("created_at: ")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_timestamp_out_of_range_after_conversion_is_invalid_event_data(value: str) -> None:
    with pytest.raises(InvalidEventData, match="created_at"):
        validate("order_changed", order(value))


def test_timestamp_without_seconds_is_accepted_with_z_as_with_an_offset() -> None:
    assert validate("order_changed", order("2026-01-30T12:00+00:00"))["created_at"] == "2026-01-30T12:00:00Z"
    assert validate("order_changed", order("2026-01-30T12:00Z"))["created_at"] == "2026-01-30T12:00:00Z"


def test_several_timestamp_and_type_problems_are_reported_together() -> None:
    data = seed("prescription_dosage_changed")
    data["created_at"] = "2026-01-30"
    data["dosage_change"] = "yes"
    data["medication"][0]["quantity"] = True
    error = problems_of("prescription_dosage_changed", data)
    assert sorted(p.split(":")[0] for p in error.problems) == [
        "created_at",
        "dosage_change",
        "medication[0].quantity",
    ]


# --- attachments -----------------------------------------------------------------------------


def test_attachment_items_are_passed_through_as_given() -> None:
    items = [
        {"url": "https://files.example.com/a.pdf", "size": 12, "meta": {"pages": 3}},
        "plain-string",
        42,
        None,
        ["nested"],
    ]
    data = seed("message_created")
    data["attachment"] = copy.deepcopy(items)
    clean = validate("message_created", data)
    assert clean["attachment"] == items
    assert [type(x) for x in clean["attachment"]] == [type(x) for x in items]
