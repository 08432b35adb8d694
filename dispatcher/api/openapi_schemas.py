"""The schemas of the API's OpenAPI document (:mod:`.openapi`), each a named component, and
its ``Idempotency-Key`` header: what the API takes and what it answers.

A request is described as strictly as the API checks it, from what it checks with: an event's
``data`` is the partner contract's ``<Event>Data`` schema (:mod:`dispatcher.contract.schemas`)
with the fields a caller may leave out (those sent as null) not required; a new endpoint is the
configuration's endpoint model (what a ``config.yaml`` endpoint is checked against). An answer
names the fields the API writes and leaves room for more (a later version may add one), so a
client reads it as a tolerant reader does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config.endpoint_file import EndpointFile
from ..contract.catalogue import CATALOGUE
from ..contract.events import EventData
from ..contract.json_safety import MAX_SAFE_INTEGER
from ..contract.schemas import data_name, definitions
from ..intake.keys import MAX_KEY_CHARS
from ..ops.endpoint_rotation import DEFAULT_GRACE_SECONDS
from ..vocabulary import EVENT_NAMES, STATUSES
from .deliveries import MAX_NAME
from .endpoints import MAX_GRACE_SECONDS, MAX_KEY, MAX_REASON
from .events import MAX_BATCH
from .idempotency import HEADER
from .idempotency import MAX_KEY_CHARS as MAX_HEADER_CHARS

REF = "#/components/schemas/{model}"
TEXT: dict[str, Any] = {"type": "string", "minLength": 1}
NAMED: dict[str, Any] = {"type": "string"}
FLAG: dict[str, Any] = {"type": "boolean"}
COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
TIME: dict[str, Any] = {"type": "string", "format": "date-time", "description": "UTC: YYYY-MM-DDTHH:MM:SSZ"}
AGE_PATTERN = "^ *[0-9]+(\\.[0-9]+)? *[smhdw]( *[0-9]+(\\.[0-9]+)? *[smhdw])* *$"
MOMENT: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "pattern": AGE_PATTERN}],
    "description": "An ISO 8601 time (without an offset: UTC), or an age: 30m, 2h, 7d",
}
"""``since`` and ``until``, as :func:`dispatcher.times.parse_moment` reads them."""
ENDPOINT_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}


IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "draft-ietf-httpapi-idempotency-key-header: the same key and body within "
    "idempotency_ttl answers the first response again (with Idempotent-Replayed: true), "
    "dispatching nothing; the same key with another body is refused 422; while the first "
    "request with it runs, 409. A UUID is a good key.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_HEADER_CHARS,
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
}
"""The ``Idempotency-Key`` request header (:mod:`.idempotency`): printable ASCII."""


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def maybe(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema``, or null."""
    return {"anyOf": [dict(schema), {"type": "null"}]}


def shape(
    properties: Mapping[str, Any], required: Sequence[str] = (), *, closed: bool = False, about: str = ""
) -> dict[str, Any]:
    """An object; ``closed``: it takes no other key (a request: an answer may grow)."""
    schema: dict[str, Any] = {"type": "object", "properties": dict(properties)}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if about:
        schema["description"] = about
    return schema


def problem_schemas() -> dict[str, Any]:
    """RFC 9457, as :class:`~dispatcher.api.problems.ApiProblem` writes it."""
    field = shape({"field": NAMED, "detail": NAMED}, ["field", "detail"], about="One bad field, by path.")
    problem = {
        "type": {**NAMED, "description": "Always about:blank: the status says the kind"},
        "title": {**NAMED, "description": "The status's phrase"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {**NAMED, "description": "What was wrong, and what to do"},
        "errors": {"type": "array", "items": ref("FieldError"), "description": "Each bad field (422, 413)"},
    }
    return {"FieldError": field, "Problem": shape(problem, ["type", "title", "status"], about="A refusal.")}


# --- events ----------------------------------------------------------------------------------

EVENT_OPTIONS: dict[str, Any] = {
    "dispatched_by": {**TEXT, "description": "metadata.dispatched_by; SYSTEM when left out"},
    "endpoints": {
        "type": "array",
        "items": TEXT,
        "uniqueItems": True,
        "description": "Send only to these configured endpoints; every subscriber when left out",
    },
    "ordering_key": {
        **TEXT,
        "maxLength": MAX_KEY_CHARS,
        "description": "For ordered endpoints: deliveries of one key arrive in dispatch order "
        "(from the endpoint's ordering_fields of the data when left out)",
    },
}


def _safe_integers(schema: Any) -> None:
    """Bounds each integer of a request's schema to the I-JSON range the contract takes."""
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            schema.setdefault("minimum", -MAX_SAFE_INTEGER)
            schema.setdefault("maximum", MAX_SAFE_INTEGER)
        for value in schema.values():
            _safe_integers(value)
    elif isinstance(schema, list):
        for value in schema:
            _safe_integers(value)


def event_data_schemas(model: type[EventData]) -> dict[str, Any]:
    """The contract's schemas of an event's data (:func:`~dispatcher.contract.schemas.definitions`)
    as a request gives it: a field sent as null when missing may be left out."""
    schemas = definitions(model, REF)
    taken = model.model_json_schema(mode="validation", ref_template=REF)
    required = {data_name(model): taken.get("required", [])}
    required.update({name: nested.get("required", []) for name, nested in taken.get("$defs", {}).items()})
    for name, schema in schemas.items():
        schema["required"] = list(required[name])
    _safe_integers(schemas)
    return schemas


def event_schemas() -> dict[str, Any]:
    """An event as ``POST /v1/events`` takes it (one of the catalogue's), a batch, the answers."""
    schemas: dict[str, Any] = {}
    mapping = {}
    for model in CATALOGUE.values():
        schemas.update(event_data_schemas(model))
        name = f"{model.__name__}Event"
        mapping[model.event] = REF.format(model=name)
        properties = {"event": {"const": model.event}, "data": ref(data_name(model)), **EVENT_OPTIONS}
        schemas[name] = shape(properties, ["event", "data"], closed=True, about=model.summary)
    schemas["Event"] = {
        "description": "One event: its name, its data as the partner contract has it, and options.",
        "oneOf": [{"$ref": target} for target in mapping.values()],
        "discriminator": {"propertyName": "event", "mapping": mapping},
    }
    events = {"type": "array", "items": ref("Event"), "minItems": 1, "maxItems": MAX_BATCH}
    schemas["EventBatch"] = shape({"events": events}, ["events"], closed=True, about="All or nothing.")
    delivery = {"request_id": {"type": "string", "format": "uuid"}, "endpoint": NAMED}
    schemas["Delivery"] = shape(delivery, ["request_id", "endpoint"], about="A delivery made.")
    deliveries = {"type": "array", "items": ref("Delivery")}
    schemas["Accepted"] = shape({"deliveries": deliveries}, ["deliveries"], about="One per endpoint.")
    answers = {"type": "array", "items": ref("Accepted")}
    schemas["BatchAccepted"] = shape({"events": answers}, ["events"], about="One per event, in order.")
    return schemas


# --- deliveries ------------------------------------------------------------------------------

INT_OR_NULL = maybe({"type": "integer"})
TEXT_OR_NULL = maybe(NAMED)
TIME_OR_NULL = maybe(TIME)
DELIVERY_ROW: dict[str, Any] = {
    "request_id": NAMED,
    "event": NAMED,
    "endpoint": NAMED,
    "status": {"enum": list(STATUSES)},
    "attempts": COUNT,
    "last_http_status": INT_OR_NULL,
    "created_at": TIME,
    "updated_at": TIME,
}
PAYLOAD_ONLY = "null unless the token has read:payload"
ATTEMPT: dict[str, Any] = {
    "attempt": COUNT,
    "retry": FLAG,
    "outcome": NAMED,
    "http_status": INT_OR_NULL,
    "error": {**TEXT_OR_NULL, "description": f"What went wrong, in the partner's words: {PAYLOAD_ONLY}"},
    "duration_ms": maybe({"type": "number"}),
    "response_body": {**TEXT_OR_NULL, "description": f"The partner's answer: {PAYLOAD_ONLY}"},
    "next_attempt_at": TIME_OR_NULL,
    "created_at": TIME,
    "failure": {**TEXT_OR_NULL, "description": "Why no HTTP answer came (timeout, ...)"},
}
DOCUMENT: dict[str, Any] = {
    **DELIVERY_ROW,
    "attempts": {"type": "array", "items": ref("Attempt")},
    "attempt_count": COUNT,
    "url": {**NAMED, "description": "Credentials masked"},
    "reason": TEXT_OR_NULL,
    "next_attempt_at": TIME_OR_NULL,
    "replay_of": TEXT_OR_NULL,
    "payload_erased_at": TIME_OR_NULL,
    "payload": {"description": f"The event's whole body as sent: {PAYLOAD_ONLY}"},
    "payload_note": TEXT_OR_NULL,
    "payload_hidden": {**FLAG, "description": "true when payload and answers are left out"},
}
REPORT: dict[str, Any] = {
    "matched": COUNT,
    "requeued": COUNT,
    "dry_run": FLAG,
    "awaiting_reconcile": COUNT,
    "request_ids": {"type": "array", "items": NAMED},
    "request_ids_truncated": FLAG,
    "skipped_endpoint_disabled": COUNT,
}


def delivery_schemas() -> dict[str, Any]:
    """A page of deliveries, one delivery with its attempts, what a retry takes and did."""
    row = shape({**DELIVERY_ROW, "reason": TEXT_OR_NULL, "last_failure": TEXT_OR_NULL}, list(DELIVERY_ROW))
    page = {"deliveries": {"type": "array", "items": ref("DeliveryRow")}, "next_cursor": TEXT_OR_NULL}
    retried = {"request_id": NAMED, "endpoint": TEXT_OR_NULL, "result": NAMED}
    selection = {
        "event": {"enum": list(EVENT_NAMES)},
        "endpoint": ENDPOINT_NAME,
        "since": MOMENT,
        "until": {**MOMENT, "description": "Before this (exclusive); later than since"},
        "dry_run": {**FLAG, "description": "Count and list them; change nothing"},
    }
    return {
        "DeliveryRow": row,
        "DeliveryPage": shape(page, ["deliveries", "next_cursor"], about="Newest first."),
        "Attempt": shape(ATTEMPT, ["attempt", "outcome"]),
        "DeliveryDocument": shape(DOCUMENT, [*DELIVERY_ROW, "payload", "payload_hidden"]),
        "RetryOutcome": shape(retried, ["request_id", "result"]),
        "RetrySelection": shape(selection, closed=True, about="The failed deliveries to retry."),
        "RetryReport": shape(REPORT, ["matched", "requeued", "dry_run"]),
        "NoFields": shape({}, closed=True, about="This action takes no fields."),
    }


# --- endpoints -------------------------------------------------------------------------------


def _tidy(schema: Any) -> None:
    """Takes out of a model's schema what only clutters a document: titles, ``default: null``."""
    if isinstance(schema, list):
        for item in schema:
            _tidy(item)
        return
    if not isinstance(schema, dict):
        return
    schema.pop("title", None)
    if "default" in schema and schema["default"] is None:
        del schema["default"]
    for key, value in schema.items():
        if key in ("properties", "$defs"):
            _tidy(list(value.values()))
        elif key not in ("examples", "enum", "const", "default"):
            _tidy(value)


def endpoint_definition_schemas() -> dict[str, Any]:
    """A new endpoint as the configuration file writes it (``Endpoint``), what it refers to,
    and a merge patch of one."""
    schema = EndpointFile.model_json_schema(ref_template=REF)
    nested = schema.pop("$defs", {})
    _tidy(schema)
    _tidy(nested)
    schema["properties"]["name"] = {**schema["properties"]["name"], **ENDPOINT_NAME}
    settings = {
        key: {"description": f"Its new value, or null: {key}'s default"} for key in schema["properties"]
    }
    about = (
        "A JSON merge patch (RFC 7396) of the endpoint's mapping as Endpoint has it: a setting set "
        "to null goes back to its default, an object is merged into the stored one; the result is "
        "checked as a new endpoint is."
    )
    patch = shape(settings, closed=True, about=about)
    return {"Endpoint": schema, "EndpointPatch": patch, **nested}


def endpoint_action_schemas(key_pattern: str) -> dict[str, Any]:
    """The bodies of the endpoint actions, and what each answers."""
    reason = {"type": "string", "minLength": 1, "maxLength": MAX_REASON, "pattern": "\\S"}
    key = {"type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": key_pattern}
    grace = {"type": "integer", "minimum": 0, "maximum": MAX_GRACE_SECONDS}
    done = {"name": NAMED, "changed": FLAG}
    return {
        "DisableBody": shape({"reason": reason}, closed=True),
        "EnableBody": shape({"resend_held_back": {**FLAG, "default": False}}, closed=True),
        "RotateKeyBody": shape({"key": key}, ["key"], closed=True),
        "RotateSecretBody": shape(
            {"grace_seconds": {**grace, "default": DEFAULT_GRACE_SECONDS}}, closed=True
        ),
        "Disabled": shape({**done, "disabled": FLAG}, ["name", "disabled", "changed"]),
        "Enabled": shape(
            {**done, "disabled": FLAG, "held_back": COUNT, "requeued": COUNT, "resent": FLAG},
            ["name", "disabled", "changed"],
        ),
        "Paused": shape({**done, "paused": FLAG}, ["name", "paused", "changed"]),
        "Resumed": shape({**done, "paused": FLAG, "woken": COUNT}, ["name", "paused", "changed"]),
        "KeyRotated": shape({"name": NAMED, "key_rotated": FLAG, "sent_from": NAMED}, ["name"]),
        "SecretRotated": shape(
            {
                "name": NAMED,
                "secret": {**NAMED, "description": "The new signing secret, shown once"},
                "retiring_until": TIME_OR_NULL,
            },
            ["name", "secret"],
        ),
    }


def endpoint_schemas() -> dict[str, Any]:
    """What the endpoint routes take and answer."""
    definition = endpoint_definition_schemas()
    state = {
        "name": NAMED,
        "disabled": FLAG,
        "reason": TEXT_OR_NULL,
        "disabled_at": TIME_OR_NULL,
        "paused": FLAG,
        "paused_at": TIME_OR_NULL,
        "breaker": {**NAMED, "description": "The circuit breaker in words: closed, open until ..."},
    }
    listed = {**state, "url": NAMED, "events": {"type": "array", "items": NAMED}, "held_back": COUNT}
    view = {
        **state,
        "settings": {"type": "object", "description": "As the file names them, every secret masked"},
        "pending": COUNT,
        "retiring_signing_secrets": {"type": "array", "items": TIME, "description": "When each stops"},
        "created_at": TIME_OR_NULL,
        "updated_at": TIME_OR_NULL,
    }
    rows = {"type": "array", "items": ref("EndpointRow")}
    removed = {"name": NAMED, "removed": FLAG, "failed": COUNT}
    return {
        **definition,
        **endpoint_action_schemas(definition["Endpoint"]["properties"]["key"]["pattern"]),
        "EndpointRow": shape(listed, ["name", "url", "events", "disabled", "paused"]),
        "EndpointList": shape({"endpoints": rows}, ["endpoints"]),
        "EndpointView": shape(view, ["name", "settings", "disabled", "paused"]),
        "EndpointRemoved": shape(removed, ["name", "removed"]),
    }


def service_schemas() -> dict[str, Any]:
    """Health, and the document itself."""
    part = shape({"ok": FLAG, "error": {**NAMED, "description": "The error's type"}}, ["ok"])
    workers = shape({"alive": {**INT_OR_NULL, "description": "null when Redis did not answer"}}, ["alive"])
    health = {
        "status": {"enum": ["ok", "unavailable"]},
        "redis": ref("HealthPart"),
        "database": ref("HealthPart"),
        "workers": workers,
    }
    return {
        "HealthPart": part,
        "Health": shape(health, list(health)),
        "OpenApiDocument": shape({"openapi": NAMED, "paths": {"type": "object"}}, ["openapi", "paths"]),
    }


def components() -> dict[str, Any]:
    """Every schema of the document, by name."""
    schemas: dict[str, Any] = {}
    for part in (problem_schemas, event_schemas, delivery_schemas, endpoint_schemas, service_schemas):
        found = part()
        clash = set(found) & set(schemas)
        if clash:
            raise ValueError(f"two schemas are named {', '.join(sorted(clash))}: rename one")
        schemas.update(found)
    return dict(sorted(schemas.items()))
