"""The six events of the partner contract as typed models: the one place each event's fields,
their types, what they mean and the seed's example are written down.

Everything else reads them: validation at dispatch, ``dispatcher sample``, the simulator's
checks, the README's field tables, and the JSON Schema and OpenAPI documents partners load
(:mod:`.schemas`). A backend can build an event as a model and dispatch it::

    from dispatcher import dispatch
    from dispatcher.events import OrderChanged

    dispatch(OrderChanged(order_number="ORDER123", status="updated", created_at=datetime.now(UTC)))

Strict, as the contract is: ``"1"`` is not an integer, ``"yes"`` not a boolean, unknown fields
are refused, ``String | null`` fields may be left out (sent as ``null``), and timestamps take
an ISO 8601 string with ``Z`` or an offset, or a ``datetime`` (naive means UTC), and are sent as
UTC ``YYYY-MM-DDTHH:MM:SSZ``. The field order is the seed's, and so is the order on the wire.
"""

from __future__ import annotations

import copy
from datetime import datetime
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, StrictInt, StrictStr
from pydantic.json_schema import WithJsonSchema

from ..times import format_utc
from ..vocabulary import EventName

TIMESTAMP_EXPECTED = "an ISO 8601 timestamp with Z or an offset, or a datetime"


def utc_timestamp(value: Any) -> str:
    """The UTC text of a timestamp given as an ISO 8601 string with ``Z`` or an offset, or as a
    ``datetime`` (naive means UTC).

    Raises:
        ValueError: anything else (a date, a time without a zone, a number...).
    """
    try:
        if isinstance(value, datetime):
            return format_utc(value)
        if isinstance(value, str) and "T" in value.upper():
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
            if parsed.tzinfo is not None:
                return format_utc(parsed)
    except (ValueError, OverflowError):
        pass
    raise ValueError(TIMESTAMP_EXPECTED)


Timestamp = Annotated[
    str,
    BeforeValidator(utc_timestamp),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}
    ),
]
"""A moment, sent as UTC ``YYYY-MM-DDTHH:MM:SSZ``."""
Items = Annotated[list[Any], Strict()]
"""An array whose items are passed through as given (if they are portable JSON)."""

_STRICT = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class Medication(BaseModel):
    """One prescribed medication (the seed's Medication Object)."""

    model_config = _STRICT

    quantity: StrictInt = Field(description="Quantity of medication prescribed")
    directions: StrictStr = Field(description="Dosage instructions for the patient")
    prescribed_item_id: StrictStr = Field(description="Unique identifier for the prescribed item")
    rx_order_id: StrictStr | None = Field(None, description="Prescription order ID if applicable")
    medication: StrictStr = Field(description="Name of the medication")


Medications = Annotated[list[Medication], Strict()]
PatientId = Annotated[StrictStr, Field(description="Unique identifier for the patient")]
"""The patient an event is about."""
EncounterId = Annotated[StrictStr, Field(description="Unique identifier for the encounter")]
"""The encounter an event is about."""
PrescriptionOrderNumber = Annotated[StrictStr | None, Field(description="Order number if applicable")]
"""A prescription's order number: ``null`` while it has none."""


class EventData(BaseModel):
    """The ``data`` of one event; each subclass is one event of the contract."""

    model_config = _STRICT

    event: ClassVar[str]
    """The event's name (``metadata`` and the wrapper's ``event``)."""
    summary: ClassVar[str]
    """One line: when the event is sent."""
    seed_example: ClassVar[dict[str, Any]]
    """The ``data`` of the seed's example payload, verbatim."""

    @classmethod
    def example(cls) -> dict[str, Any]:
        """The seed's example ``data`` (a fresh copy)."""
        return copy.deepcopy(cls.seed_example)

    def data(self) -> dict[str, Any]:
        """The ``data`` a partner receives: every field, in the seed's order."""
        return self.model_dump()


_TIME = "2026-01-30T12:00:00Z"


def _medication_example(directions: str) -> list[dict[str, Any]]:
    return [
        {
            "quantity": 1,
            "directions": directions,
            "prescribed_item_id": "prx_rx_id",
            "rx_order_id": None,
            "medication": "Medication Name",
        }
    ]


class PrescriptionSubmitted(EventData):
    """Triggered when prescriptions are submitted for an encounter: the patient, the encounter and
    every medication prescribed."""

    event = EventName.PRESCRIPTION_SUBMITTED.value
    summary = "Sent when prescriptions are submitted for an encounter"
    seed_example = {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "order_number": None,
        "medication": _medication_example("Take 1 tablet daily"),
        "created_at": _TIME,
        "special_necessities": "optional notes",
    }

    patient_id: PatientId
    encounter_id: EncounterId
    order_number: PrescriptionOrderNumber = None
    medication: Medications = Field(description="List of prescribed medications")
    created_at: Timestamp = Field(description="Timestamp when the prescription was created")
    special_necessities: StrictStr | None = Field(None, description="Optional notes or special requirements")


class PrescriptionDosageChanged(EventData):
    """Triggered when a submitted prescription's dosage is modified: the updated medication."""

    event = EventName.PRESCRIPTION_DOSAGE_CHANGED.value
    summary = "Sent when a submitted prescription dosage changes"
    seed_example = {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "order_number": None,
        "medication": _medication_example("Updated directions"),
        "dosage_change": True,
        "created_at": _TIME,
    }

    patient_id: PatientId
    encounter_id: EncounterId
    order_number: PrescriptionOrderNumber = None
    medication: Medications = Field(description="List of medications with updated dosages")
    dosage_change: StrictBool = Field(description="Flag indicating this is a dosage change event")
    created_at: Timestamp = Field(description="Timestamp when the change was made")


class EncounterCancelled(EventData):
    """Triggered when an encounter is cancelled: who cancelled it and why."""

    event = EventName.ENCOUNTER_CANCELLED.value
    summary = "Sent when an encounter is cancelled"
    seed_example = {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "reason": "Cancellation reason",
        "cancel_by_name": "Provider Name",
        "cancel_by_id": "provider_id",
        "created_at": _TIME,
    }

    patient_id: PatientId
    encounter_id: EncounterId
    reason: StrictStr = Field(description="Reason for the cancellation")
    cancel_by_name: StrictStr = Field(description="Name of the person who cancelled")
    cancel_by_id: StrictStr = Field(description="ID of the person who cancelled")
    created_at: Timestamp = Field(description="Timestamp when the cancellation occurred")


class MessageCreated(EventData):
    """Triggered when a message is created in the EHR: its content, its author and attachments."""

    event = EventName.MESSAGE_CREATED.value
    summary = "Sent when a message is created in the EHR"
    seed_example = {
        "patient_id": "patient_unique_id",
        "encounter_id": "encounter_id",
        "author_id": "author_id",
        "is_doctor": True,
        "reply_message_id": None,
        "channel": "patient",
        "message": "Hello from clinician",
        "attachment": [],
        "created_at": _TIME,
    }

    patient_id: PatientId
    encounter_id: EncounterId
    author_id: StrictStr = Field(description="ID of the message author")
    is_doctor: StrictBool = Field(description="Whether the author is a doctor")
    reply_message_id: StrictStr | None = Field(
        None, description="ID of the message being replied to (if applicable)"
    )
    channel: StrictStr = Field(description='Communication channel (e.g., "patient")')
    message: StrictStr = Field(description="Content of the message")
    attachment: Items = Field(description="List of attachments (if any), passed through as given")
    created_at: Timestamp = Field(description="Timestamp when the message was created")


class OrderChanged(EventData):
    """Triggered when an order is updated, such as status changes or reshipment updates."""

    event = EventName.ORDER_CHANGED.value
    summary = "Sent when an order is updated (e.g., reshipment updates)"
    seed_example = {"order_number": "ORDER123", "status": "updated", "created_at": _TIME}

    order_number: StrictStr = Field(description="Unique order identifier")
    status: StrictStr = Field(description="Current status of the order")
    created_at: Timestamp = Field(description="Timestamp when the change was made")


class CaseAssignedToClinician(EventData):
    """Triggered when a case is assigned to a clinician: the encounter, the patient, the clinician."""

    event = EventName.CASE_ASSIGNED_TO_CLINICIAN.value
    summary = "Sent when a case is assigned to a clinician"
    seed_example = {
        "encounter_id": "encounter_id",
        "patient_id": "patient_unique_id",
        "clinician_id": "provider_id",
        "assigned_at": _TIME,
    }

    encounter_id: EncounterId
    patient_id: PatientId
    clinician_id: StrictStr = Field(description="ID of the assigned clinician")
    assigned_at: Timestamp = Field(description="Timestamp when the assignment was made")


@cache
def timestamps(model: type[BaseModel]) -> frozenset[str]:
    """The model's timestamp fields (given as a string or a ``datetime``, sent as UTC text)."""
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if any(isinstance(m, BeforeValidator) and m.func is utc_timestamp for m in info.metadata)
    )


MODELS: tuple[type[EventData], ...] = (
    PrescriptionSubmitted,
    PrescriptionDosageChanged,
    EncounterCancelled,
    MessageCreated,
    OrderChanged,
    CaseAssignedToClinician,
)
"""The six events, in the seed's order."""
