"""The six events as typed models (``dispatcher/contract/events.py``): the seed's examples,
strict types, ``String | null`` fields that may be left out, timestamps given as ISO 8601 text or
a ``datetime`` and sent as UTC ``Z``, and attachments passed through as given."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from dispatcher.contract.catalogue import CATALOGUE
from dispatcher.contract.events import TIMESTAMP_EXPECTED, Medication, timestamps, utc_timestamp
from dispatcher.contract.validation import validate
from dispatcher.errors import InvalidEventData

from .seed_data import NULLABLE_FIELDS, SEED_EXAMPLES, SEED_MEDICATION_FIELDS, order, problems_of, seed

# --- the seed examples -----------------------------------------------------------------------


@pytest.mark.parametrize("event", list(SEED_EXAMPLES))
def test_example_equals_the_seed_example(event: str) -> None:
    assert CATALOGUE[event].example() == SEED_EXAMPLES[event]


def test_example_returns_a_fresh_copy_each_time() -> None:
    first = CATALOGUE["message_created"].example()
    first["attachment"].append({"url": "https://files.example.com/a.pdf"})
    try:
        assert CATALOGUE["message_created"].example()["attachment"] == []
    finally:
        first["attachment"].clear()  # undo the leak so other tests see the seed's example


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


# --- null fields -----------------------------------------------------------------------------


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


# --- the timestamp type ----------------------------------------------------------------------


def test_utc_timestamp_writes_utc_z_or_says_what_it_expected() -> None:
    assert utc_timestamp("2026-01-30T12:00:00z") == "2026-01-30T12:00:00Z"
    assert (
        utc_timestamp(datetime(2026, 1, 30, 13, tzinfo=timezone(timedelta(hours=1))))
        == "2026-01-30T12:00:00Z"
    )
    for value in ("2026-01-30", "2026-01-30T12:00:00", "T", 1769774400, None):
        with pytest.raises(ValueError, match=f"^{TIMESTAMP_EXPECTED}$"):
            utc_timestamp(value)


def test_each_models_timestamp_fields_are_known() -> None:
    assert {event: timestamps(model) for event, model in CATALOGUE.items()} == {
        "prescription_submitted": {"created_at"},
        "prescription_dosage_changed": {"created_at"},
        "encounter_cancelled": {"created_at"},
        "message_created": {"created_at"},
        "order_changed": {"created_at"},
        "case_assigned_to_clinician": {"assigned_at"},
    }
    assert timestamps(Medication) == frozenset()
