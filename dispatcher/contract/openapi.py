"""The partner contract as an OpenAPI 3.1 document: its ``webhooks`` section has the six events,
each a POST with its body's schema (named components: ``WebhookMetadata``, ``Medication``,
``<Event>Data``, ``<Event>Webhook``), the seed's example payload, the ``X-Webhook-Key`` header
(and the Standard Webhooks headers an endpoint with a signing secret also gets), and the
responses with what each makes the sender do (the seed's status table).

``dispatcher schema --openapi`` prints it; partners load it into their tools (a mock server, a
contract test, generated types) and check a receiver against it.
"""

from __future__ import annotations

import copy
from typing import Any

from .catalogue import CATALOGUE
from .events import EventData
from .schemas import (
    METADATA_NAME,
    METADATA_SCHEMA,
    definitions,
    described,
    example_payload,
    webhook_name,
    wrapper_schema,
)
from .wrapper import WEBHOOK_VERSION

REF = "#/components/schemas/{model}"

HEADERS: list[dict[str, Any]] = [
    {
        "name": "X-Webhook-Key",
        "in": "header",
        "required": True,
        "description": "Your webhook key (the default xxx when none is configured): check it before "
        "processing anything.",
        "schema": {"type": "string"},
    },
    {
        "name": "webhook-id",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks, when your endpoint has a signing secret: the request_id.",
        "schema": {"type": "string", "format": "uuid"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks, when your endpoint has a signing secret: unix seconds of "
        "this attempt.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": False,
        "description": "Standard Webhooks, when your endpoint has a signing secret: space-separated "
        "`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret (rotation).",
        "schema": {"type": "string"},
    },
]

RESPONSES: dict[str, dict[str, str]] = {
    "2XX": {"description": "Success: the delivery is marked delivered. Answer within 30 seconds."},
    "408": {"description": "Retried with exponential backoff; Retry-After may lengthen the wait."},
    "410": {"description": "Gone: the delivery fails and the endpoint is disabled until re-enabled."},
    "425": {"description": "Retried with exponential backoff; Retry-After may lengthen the wait."},
    "429": {"description": "Retried with exponential backoff; Retry-After may lengthen the wait."},
    "4XX": {"description": "Client error: logged as a failure, not retried."},
    "5XX": {"description": "Server error: retried with exponential backoff."},
}
"""The seed's "Expected Responses", with what the sender does. No answer within the timeout is
retried too (it has no status to document here)."""


EXAMPLE_SUMMARY = 'The seed\'s example (a real UUID where the seed writes the placeholder "uuid")'


def _webhook(model: type[EventData]) -> dict[str, Any]:
    return {
        "post": {
            "operationId": model.event,
            "summary": model.summary,
            "description": described(model)
            + "\n\nHandle each `metadata.request_id` once: a delivery may arrive more than once.",
            "parameters": copy.deepcopy(HEADERS),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": REF.format(model=webhook_name(model))},
                        "examples": {"seed": {"summary": EXAMPLE_SUMMARY, "value": example_payload(model)}},
                    }
                },
            },
            "responses": copy.deepcopy(RESPONSES),
        }
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every webhook this sender sends."""
    schemas: dict[str, Any] = {METADATA_NAME: copy.deepcopy(METADATA_SCHEMA)}
    for model in CATALOGUE.values():
        schemas.update(definitions(model, REF))
        schemas[webhook_name(model)] = wrapper_schema(model, REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Baremeds-EHR outgoing webhooks",
            "version": WEBHOOK_VERSION,
            "description": "What Baremeds-EHR POSTs to partner endpoints: the standard wrapper (event, "
            "timestamp, data, metadata) around each event's data. Verify X-Webhook-Key; answer 2xx "
            "within 30 seconds; use metadata.request_id to handle duplicates.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "paths": {},
        "webhooks": {model.event: _webhook(model) for model in CATALOGUE.values()},
        "components": {"schemas": schemas},
    }
