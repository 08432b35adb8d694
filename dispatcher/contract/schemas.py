"""The contract as documents partners load into their tools: a JSON Schema (2020-12) of each
event's whole body, and an OpenAPI 3.1 document whose ``webhooks`` section has the six events,
the headers, the responses and what each makes the sender do, with the seed's examples.

Everything here is read off the event models (:mod:`.events`) and the wrapper
(:mod:`.wrapper`): the documents cannot drift from what is sent.

Every schema a code generator makes a class of is a named definition with a ``title``, so the
classes it writes read as the contract does: ``WebhookMetadata``, ``Medication``,
``<Event>Data`` (an event's ``data``) and ``<Event>Webhook`` (its whole body), e.g.
``OrderChangedData`` and ``OrderChangedWebhook``.

The examples are the seed's, with one change: the seed writes ``"request_id": "uuid"`` (a
placeholder), the examples published here carry a real UUID, so they pass the schemas with
formats checked (``format: uuid``, ``format: date-time``).
"""

from __future__ import annotations

import copy
from typing import Any

from .catalogue import get_event
from .events import EventData
from .wrapper import WEBHOOK_VERSION

DIALECT = "https://json-schema.org/draft/2020-12/schema"
METADATA_NAME = "WebhookMetadata"
"""The name (and title) of the ``metadata`` object's schema."""
EXAMPLE_REQUEST_ID = "5f3c9a1e-7b2d-4c8e-9a6f-1d2e3b4c5a6f"
"""The ``request_id`` of the published examples: a real UUID (version 4) where the seed has the
placeholder ``"uuid"``."""
SEED_TIMESTAMP = "2026-01-30T12:00:00Z"
"""The ``timestamp`` of the seed's example payloads."""
EXAMPLE_METADATA: dict[str, Any] = {
    "source": "Baremeds",
    "environment": "production",
    "webhook_version": WEBHOOK_VERSION,
    "request_id": EXAMPLE_REQUEST_ID,
    "dispatched_by": "SYSTEM",
    "retry": False,
}
"""The ``metadata`` of the published examples: the seed's, with a real ``request_id``."""

METADATA_SCHEMA: dict[str, Any] = {
    "title": METADATA_NAME,
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
            "examples": [EXAMPLE_REQUEST_ID],
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
    "examples": [EXAMPLE_METADATA],
}


def described(model: type[EventData]) -> str:
    """The model's docstring as one paragraph."""
    return " ".join((model.__doc__ or model.summary).split())


def data_name(model: type[EventData]) -> str:
    """The name (and title) of an event's ``data`` schema: ``OrderChangedData``."""
    return f"{model.__name__}Data"


def webhook_name(model: type[EventData]) -> str:
    """The name (and title) of an event's whole body's schema: ``OrderChangedWebhook``."""
    return f"{model.__name__}Webhook"


def definitions(model: type[EventData], ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The named schemas an event's body refers to through ``ref_template``: its ``data`` as
    sent (every field present, nullable ones as null), with the seed's example, and what that
    refers to (the medication object)."""
    schema = model.model_json_schema(mode="serialization", ref_template=ref_template)
    nested = schema.pop("$defs", {})
    schema["title"] = data_name(model)
    schema["examples"] = [model.example()]
    return {data_name(model): schema, **nested}


def wrapper_schema(model: type[EventData], ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
    """The body of one event's webhook: the standard wrapper around the event's data."""
    return {
        "title": webhook_name(model),
        "description": described(model),
        "type": "object",
        "properties": {
            "event": {"const": model.event, "description": "The name of the event"},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the event was dispatched, UTC YYYY-MM-DDTHH:MM:SSZ; the same on every attempt",
            },
            "data": {"$ref": ref_template.format(model=data_name(model))},
            "metadata": {"$ref": ref_template.format(model=METADATA_NAME)},
        },
        "required": ["event", "timestamp", "data", "metadata"],
        "additionalProperties": False,
        "examples": [example_payload(model)],
    }


def event_schema(event: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of an event's whole body (``dispatcher schema EVENT``)."""
    model = get_event(event)
    return {
        "$schema": DIALECT,
        "$id": f"https://baremeds.example/webhooks/{WEBHOOK_VERSION}/{model.event}.json",
        **wrapper_schema(model),
        "$defs": {**definitions(model), METADATA_NAME: copy.deepcopy(METADATA_SCHEMA)},
    }


def example_payload(model: type[EventData]) -> dict[str, Any]:
    """The seed's example payload of an event, whole (wrapper, data and metadata), with a real
    ``request_id`` in place of the seed's ``"uuid"``."""
    return {
        "event": model.event,
        "timestamp": SEED_TIMESTAMP,
        "data": model.example(),
        "metadata": copy.deepcopy(EXAMPLE_METADATA),
    }
