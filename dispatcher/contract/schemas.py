"""The contract as documents partners load into their tools: a JSON Schema (2020-12) of each
event's whole body, and an OpenAPI 3.1 document whose ``webhooks`` section has the six events,
the headers, the responses and what each makes the sender do, with the seed's examples.

Everything here is read off the event models (:mod:`.events`) and the wrapper
(:mod:`.wrapper`): the documents cannot drift from what is sent.
"""

from __future__ import annotations

import copy
from typing import Any

from .catalogue import get_event
from .events import EventData
from .wrapper import WEBHOOK_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SEED_METADATA = {
    "source": "Baremeds",
    "environment": "production",
    "webhook_version": WEBHOOK_VERSION,
    "request_id": "uuid",
    "dispatched_by": "SYSTEM",
    "retry": False,
}
"""The ``metadata`` of the seed's example payloads (``request_id`` is the seed's placeholder)."""
SEED_TIMESTAMP = "2026-01-30T12:00:00Z"

METADATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Additional context about the webhook request.",
    "properties": {
        "source": {"type": "string", "description": 'Application name (e.g., "Baremeds")'},
        "environment": {
            "type": "string",
            "description": 'Environment identifier (e.g., "production", "staging")',
        },
        "webhook_version": {"const": WEBHOOK_VERSION, "description": "API version for the webhook payload"},
        "request_id": {
            "type": "string",
            "format": "uuid",
            "description": "Unique identifier of this delivery: the same on every attempt; use it to "
            "handle a duplicate once",
        },
        "dispatched_by": {
            "type": "string",
            "description": "Identifier of the system component that dispatched the event",
        },
        "retry": {"type": "boolean", "description": "false on the first attempt of a delivery, true after"},
        "webhook_key": {
            "type": "string",
            "description": "The endpoint's key, only when the endpoint is configured with include_key_in_body",
        },
    },
    "required": ["source", "environment", "webhook_version", "request_id", "dispatched_by", "retry"],
    "additionalProperties": False,
}


def described(model: type[EventData]) -> str:
    """The model's docstring as one paragraph."""
    return " ".join((model.__doc__ or model.summary).split())


def _name(model: type[EventData]) -> str:
    return f"{model.__name__}Webhook"


def data_schema(
    model: type[EventData], ref_template: str = "#/$defs/{model}"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's schema as sent (every field present, nullable ones as null) and its
    definitions (the medication object), referred to through ``ref_template``."""
    schema = model.model_json_schema(mode="serialization", ref_template=ref_template)
    return schema, schema.pop("$defs", {})


def wrapper_schema(model: type[EventData], ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The body of one event's webhook: the standard wrapper around the event's data."""
    data, _defs = data_schema(model, ref_template)
    return {
        "title": _name(model),
        "description": described(model),
        "type": "object",
        "properties": {
            "event": {"const": model.event, "description": "The name of the event"},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the event was dispatched, UTC YYYY-MM-DDTHH:MM:SSZ; the same on every attempt",
            },
            "data": data,
            "metadata": {"$ref": ref_template.format(model="Metadata")},
        },
        "required": ["event", "timestamp", "data", "metadata"],
        "additionalProperties": False,
    }


def event_schema(event: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of an event's whole body (``dispatcher schema EVENT``)."""
    model = get_event(event)
    _data, defs = data_schema(model)
    return {
        "$schema": DIALECT,
        "$id": f"https://baremeds.example/webhooks/{WEBHOOK_VERSION}/{model.event}.json",
        **wrapper_schema(model),
        "$defs": {**defs, "Metadata": METADATA_SCHEMA},
    }


def seed_payload(model: type[EventData]) -> dict[str, Any]:
    """The seed's example payload of an event, whole (wrapper, data and metadata)."""
    return {
        "event": model.event,
        "timestamp": SEED_TIMESTAMP,
        "data": model.example(),
        "metadata": copy.deepcopy(SEED_METADATA),
    }
