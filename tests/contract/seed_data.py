"""The seed contract's examples and "Data Fields" tables, copied verbatim, and the helpers the
contract's tests change and validate them with (``test_catalogue``, ``test_events``,
``test_validation``)."""

from __future__ import annotations

import copy

import pytest

from dispatcher.contract.validation import validate
from dispatcher.errors import InvalidEventData

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
