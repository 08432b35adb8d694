"""The event catalogue: the one place each event's fields are defined, and their validation.

Validation is strict: ``"yes"`` is not a boolean, ``"1"`` is not an integer, unknown fields are
rejected, and ``String | null`` fields may be omitted (they are sent as ``null``). Timestamps
accept an ISO 8601 string with ``Z`` or an offset, or a ``datetime`` (naive means UTC), and are
always sent as UTC ``YYYY-MM-DDTHH:MM:SSZ``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidEventData, UnknownEvent


@dataclass(frozen=True)
class Field:
    """One data field: its name, type, whether it may be null, and what it means."""

    name: str
    type: str  # "string" | "integer" | "boolean" | "datetime" | "array" | "object"
    description: str
    nullable: bool = False
    items: tuple[Field, ...] | None = None  # for an array of objects; None passes items through
    example: Any = None


@dataclass(frozen=True)
class Event:
    name: str
    description: str
    fields: tuple[Field, ...]

    def example(self) -> dict[str, Any]:
        """The seed's example ``data`` for this event."""
        return copy.deepcopy({f.name: _example_value(f) for f in self.fields})


def _example_value(field: Field) -> Any:
    if field.items is not None:
        return [{item.name: _example_value(item) for item in field.items}]
    return field.example


def _medication(directions_example: str) -> tuple[Field, ...]:
    """The medication object; only the example text differs between the two prescription events."""
    return (
        Field("quantity", "integer", "Quantity of medication prescribed", example=1),
        Field("directions", "string", "Dosage instructions for the patient", example=directions_example),
        Field(
            "prescribed_item_id", "string", "Unique identifier for the prescribed item", example="prx_rx_id"
        ),
        Field("rx_order_id", "string", "Prescription order ID if applicable", nullable=True),
        Field("medication", "string", "Name of the medication", example="Medication Name"),
    )


_EXAMPLE_TIME = "2026-01-30T12:00:00Z"
_PATIENT = Field("patient_id", "string", "Unique identifier for the patient", example="patient_unique_id")
_ENCOUNTER = Field("encounter_id", "string", "Unique identifier for the encounter", example="encounter_id")
_ORDER_NUMBER = Field("order_number", "string", "Order number if applicable", nullable=True)

CATALOGUE: dict[str, Event] = {
    e.name: e
    for e in (
        Event(
            "prescription_submitted",
            "Sent when prescriptions are submitted for an encounter",
            (
                _PATIENT,
                _ENCOUNTER,
                _ORDER_NUMBER,
                Field(
                    "medication",
                    "array",
                    "List of prescribed medications",
                    items=_medication("Take 1 tablet daily"),
                ),
                Field(
                    "created_at",
                    "datetime",
                    "Timestamp when the prescription was created",
                    example=_EXAMPLE_TIME,
                ),
                Field(
                    "special_necessities",
                    "string",
                    "Optional notes or special requirements",
                    nullable=True,
                    example="optional notes",
                ),
            ),
        ),
        Event(
            "prescription_dosage_changed",
            "Sent when a submitted prescription dosage changes",
            (
                _PATIENT,
                _ENCOUNTER,
                _ORDER_NUMBER,
                Field(
                    "medication",
                    "array",
                    "List of medications with updated dosages",
                    items=_medication("Updated directions"),
                ),
                Field(
                    "dosage_change", "boolean", "Flag indicating this is a dosage change event", example=True
                ),
                Field("created_at", "datetime", "Timestamp when the change was made", example=_EXAMPLE_TIME),
            ),
        ),
        Event(
            "encounter_cancelled",
            "Sent when an encounter is cancelled",
            (
                _PATIENT,
                _ENCOUNTER,
                Field("reason", "string", "Reason for the cancellation", example="Cancellation reason"),
                Field(
                    "cancel_by_name", "string", "Name of the person who cancelled", example="Provider Name"
                ),
                Field("cancel_by_id", "string", "ID of the person who cancelled", example="provider_id"),
                Field(
                    "created_at",
                    "datetime",
                    "Timestamp when the cancellation occurred",
                    example=_EXAMPLE_TIME,
                ),
            ),
        ),
        Event(
            "message_created",
            "Sent when a message is created in the EHR",
            (
                _PATIENT,
                _ENCOUNTER,
                Field("author_id", "string", "ID of the message author", example="author_id"),
                Field("is_doctor", "boolean", "Whether the author is a doctor", example=True),
                Field(
                    "reply_message_id",
                    "string",
                    "ID of the message being replied to (if applicable)",
                    nullable=True,
                ),
                Field("channel", "string", 'Communication channel (e.g., "patient")', example="patient"),
                Field("message", "string", "Content of the message", example="Hello from clinician"),
                Field(
                    "attachment", "array", "List of attachments (if any), passed through as given", example=[]
                ),
                Field(
                    "created_at", "datetime", "Timestamp when the message was created", example=_EXAMPLE_TIME
                ),
            ),
        ),
        Event(
            "order_changed",
            "Sent when an order is updated (e.g., reshipment updates)",
            (
                Field("order_number", "string", "Unique order identifier", example="ORDER123"),
                Field("status", "string", "Current status of the order", example="updated"),
                Field("created_at", "datetime", "Timestamp when the change was made", example=_EXAMPLE_TIME),
            ),
        ),
        Event(
            "case_assigned_to_clinician",
            "Sent when a case is assigned to a clinician",
            (
                _ENCOUNTER,
                _PATIENT,
                Field("clinician_id", "string", "ID of the assigned clinician", example="provider_id"),
                Field(
                    "assigned_at", "datetime", "Timestamp when the assignment was made", example=_EXAMPLE_TIME
                ),
            ),
        ),
    )
}

EVENT_NAMES: list[str] = list(CATALOGUE)


def get_event(name: Any) -> Event:
    """Returns the catalogue entry.

    Raises:
        UnknownEvent: the name is not in the catalogue.
    """
    if not isinstance(name, str) or name not in CATALOGUE:
        raise UnknownEvent(name, EVENT_NAMES)
    return CATALOGUE[name]


def format_utc(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(value: Any) -> str | None:
    """The UTC form of a timestamp, or None when the value is not an acceptable one."""
    try:
        if isinstance(value, datetime):
            return format_utc(value)
        if not isinstance(value, str) or "T" not in value.upper():
            return None
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return None
        return format_utc(parsed)
    except (ValueError, OverflowError):
        return None


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "datetime": "an ISO 8601 timestamp with Z or an offset, or a datetime",
}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _validate_object(fields: tuple[Field, ...], data: Any, path: str, problems: list[str]) -> dict[str, Any]:
    where = f"{path}: " if path else ""
    if not isinstance(data, dict):
        problems.append(f"{where or 'data: '}expected an object, got {_describe(data)}")
        return {}
    known = {f.name for f in fields}
    for name in data:
        if name not in known:
            problems.append(f"{path + '.' if path else ''}{name}: unknown field")
    clean: dict[str, Any] = {}
    for field in fields:
        field_path = f"{path}.{field.name}" if path else field.name
        if field.name not in data:
            if field.nullable:
                clean[field.name] = None
            else:
                problems.append(f"{field_path}: required field is missing")
            continue
        clean[field.name] = _validate_value(field, data[field.name], field_path, problems)
    return clean


def _validate_value(field: Field, value: Any, path: str, problems: list[str]) -> Any:
    if value is None:
        if not field.nullable:
            problems.append(f"{path}: must not be null; expected {_EXPECTED[field.type]}")
        return None
    if field.type == "datetime":
        normalized = _parse_timestamp(value)
        if normalized is None:
            problems.append(f"{path}: expected {_EXPECTED['datetime']}, got {_describe(value)}")
        return normalized
    if not _TYPE_CHECKS[field.type](value):
        problems.append(f"{path}: expected {_EXPECTED[field.type]}, got {_describe(value)}")
        return value
    if field.type == "array" and field.items is not None:
        return [_validate_object(field.items, item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    return value


def validate(event: str, data: Any) -> dict[str, Any]:
    """Checks ``data`` against the catalogue and returns the normalized copy that is sent.

    Raises:
        UnknownEvent: the event is not in the catalogue.
        InvalidEventData: naming every bad field by its path, e.g. ``medication[0].quantity``.
    """
    spec = get_event(event)
    problems: list[str] = []
    clean = _validate_object(spec.fields, data, "", problems)
    if problems:
        raise InvalidEventData(spec.name, problems)
    return clean
