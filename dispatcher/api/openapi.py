"""The API's own OpenAPI 3.1 document, served at ``GET /v1/openapi.json`` without a token: every
route of :mod:`.app` with its parameters and body, each status it can answer with that answer's
body -- the successes, and every refusal as an RFC 9457 problem (:mod:`.problems`) --, the
bearer token and the scope each operation needs, the ``Idempotency-Key`` request header and the
``Idempotent-Replayed``, ``Retry-After`` and ``WWW-Authenticate`` answers.

The schemas are :mod:`.openapi_schemas`'; this module says which operation takes and answers
which. A refusal any operation with a token can make (401, 403, 429, 503) and one any operation
with a body can make (400, 413, 415, 422) is declared on each of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..contract.wrapper import WEBHOOK_VERSION
from ..vocabulary import EVENT_NAMES, STATUSES
from .deliveries import DEFAULT_LIMIT, MAX_CURSOR, MAX_LIMIT
from .events import MAX_BATCH
from .idempotency import REPLAYED
from .openapi_schemas import ENDPOINT_NAME, IDEMPOTENCY_KEY, MOMENT, components, ref
from .problems import MEDIA_TYPE

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
BEARER = "bearer"
SECONDS = {"type": "string", "pattern": "^[0-9]+$"}
NO_SLASH: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
"""A path parameter: one segment of the path."""


def header(description: str, schema: Mapping[str, Any], required: bool = False) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": dict(schema)}


def answer(description: str, schema: str, headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A success: the component ``schema`` as JSON."""
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": ref(schema)}}}
    if headers:
        response["headers"] = dict(headers)
    return response


def problem(description: str, *, retry_after: bool | None = None, challenge: bool = False) -> dict[str, Any]:
    """A refusal: a problem document; ``retry_after``: with that header (True: always)."""
    response: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": ref("Problem")}},
    }
    headers: dict[str, Any] = {}
    if retry_after is not None:
        headers["Retry-After"] = header("Seconds to wait before trying again.", SECONDS, retry_after)
    if challenge:
        headers["WWW-Authenticate"] = header("How to authenticate: Bearer.", {"type": "string"}, True)
    if headers:
        response["headers"] = headers
    return response


def caller_refusals() -> dict[str, Any]:
    """What any operation with a token may answer instead of doing anything."""
    return {
        "401": problem("No bearer token, or an unknown or revoked one.", challenge=True),
        "403": problem("The token lacks the scope this operation needs (the detail names it)."),
        "429": problem("The token is over api.rate_limit.", retry_after=True),
        "503": problem("Redis or the database did not answer; nothing was done.", retry_after=True),
    }


def body_refusals(invalid: str) -> dict[str, Any]:
    """What any operation that reads a JSON body may answer about it; ``invalid``: its 422."""
    return {
        "400": problem("The body is not UTF-8, not JSON, or not a JSON object."),
        "413": problem("The body is larger than api.max_body_bytes."),
        "415": problem("The Content-Type is not JSON (application/json, or any +json)."),
        "422": problem(invalid),
    }


def operation(
    op_id: str,
    summary: str,
    scope: str | None,
    answers: Mapping[str, Any],
    *,
    body: str | None = None,
    body_required: bool = True,
    media_types: Sequence[str] = (JSON,),
    parameters: Sequence[Mapping[str, Any]] = (),
    refusals: Mapping[str, Any] | None = None,
    invalid: str = "A field is invalid: errors names each by its path. Nothing was done.",
) -> dict[str, Any]:
    """One operation: ``scope`` (None: no token), its ``answers``, ``body`` (a component's name)
    and its ``refusals``, besides those of the caller and of the body."""
    found: dict[str, Any] = {"operationId": op_id, "summary": summary}
    responses: dict[str, Any] = dict(answers)
    if parameters:
        found["parameters"] = [dict(p) for p in parameters]
    if body is not None:
        content = {media: {"schema": ref(body)} for media in media_types}
        found["requestBody"] = {"required": body_required, "content": content}
        responses.update(body_refusals(invalid))
    if scope is not None:
        found["description"] = f"Needs a token with the `{scope}` scope."
        found["security"] = [{BEARER: [scope]}]
        responses.update(caller_refusals())
    else:
        found["security"] = []
    responses.update(refusals or {})
    found["responses"] = dict(sorted(responses.items()))
    return found


def query(name: str, schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": dict(schema), "description": description}


def in_path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": dict(NO_SLASH),
        "description": description,
    }


QUERY_REFUSED = "A query parameter is unknown, repeated or invalid: errors names it."
SETTING_REFUSED = "A setting is invalid (errors names it, by its file name), or holds a masked secret (****)."
BUSY = "Deliveries to the endpoint are pending: force=true fails them."
CHANGED = "The endpoint was changed meanwhile by someone else: read it and retry."


# --- events ----------------------------------------------------------------------------------


def event_paths() -> dict[str, Any]:
    replayed = {REPLAYED: header("true when this is the first response again.", {"enum": ["true"]})}
    refusals = {
        "409": problem("A request with this Idempotency-Key is still being processed.", retry_after=True),
        "413": problem("The body is over api.max_body_bytes, or an event over delivery.max_payload_bytes."),
    }
    invalid = (
        "An event is invalid (errors names each field by its path: data.order_number, or "
        "events[3].data.order_number in a batch), names an unknown event or endpoint, or the "
        "Idempotency-Key is unusable or was used with another body. Nothing was dispatched."
    )
    one = operation(
        "post_event",
        "Dispatch one event",
        "send",
        {"202": answer("Accepted: its deliveries, one per endpoint.", "Accepted", replayed)},
        body="Event",
        parameters=[IDEMPOTENCY_KEY],
        refusals=refusals,
        invalid=invalid,
    )
    batch = operation(
        "post_batch",
        f"Dispatch up to {MAX_BATCH} events, all or nothing",
        "send",
        {"202": answer("Accepted: each event's deliveries, in order.", "BatchAccepted", replayed)},
        body="EventBatch",
        parameters=[IDEMPOTENCY_KEY],
        refusals=refusals,
        invalid=invalid,
    )
    return {"/v1/events": {"post": one}, "/v1/events/batch": {"post": batch}}


# --- deliveries ------------------------------------------------------------------------------


def delivery_filters() -> list[dict[str, Any]]:
    """The query parameters of ``GET /v1/deliveries``."""
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}
    cursor = {"type": "string", "minLength": 1, "maxLength": MAX_CURSOR, "pattern": "^[A-Za-z0-9_-]+$"}
    return [
        query("status", {"enum": list(STATUSES)}, "Only deliveries in this status."),
        query("event", {"enum": list(EVENT_NAMES)}, "Only deliveries of this event."),
        query("endpoint", ENDPOINT_NAME, "Only deliveries to this endpoint (a removed one too)."),
        query("since", MOMENT, "Only deliveries created at or after this time."),
        query("until", MOMENT, "Only deliveries created before this time (later than since)."),
        query("limit", limit, "Rows per page."),
        query("cursor", cursor, "The next_cursor of the page before, as it came."),
    ]


FIRST_ROW = {
    f"{op_id}_of_first": {
        "operationId": op_id,
        "parameters": {"request_id": "$response.body#/deliveries/0/request_id"},
    }
    for op_id in ("show_delivery", "retry_delivery")
}
"""Where a page's rows lead (OpenAPI links: a client, or a fuzzer, follows them)."""


def delivery_paths() -> dict[str, Any]:
    request_id = in_path("request_id", "The delivery's request_id.")
    unknown = {"404": problem("No delivery has this request_id.")}
    listed = operation(
        "list_deliveries",
        "Deliveries, newest first, a page at a time",
        "read",
        {"200": {**answer("A page; next_cursor is null on the last.", "DeliveryPage"), "links": FIRST_ROW}},
        parameters=delivery_filters(),
        refusals={"422": problem(QUERY_REFUSED)},
    )
    shown = operation(
        "show_delivery",
        "One delivery with its attempts (its payload and the partner's answers with read:payload, audited)",
        "read",
        {"200": answer("The delivery.", "DeliveryDocument")},
        parameters=[request_id],
        refusals=unknown,
    )
    retried = operation(
        "retry_delivery",
        "Send a failed delivery again, with a fresh attempt budget",
        "operate",
        {"202": answer("Queued again.", "RetryOutcome")},
        body="NoFields",
        body_required=False,
        parameters=[request_id],
        refusals={**unknown, "409": problem("The delivery may not be sent again: the detail says why.")},
    )
    retried_all = operation(
        "retry_failed",
        "Send the failed deliveries of a selection again (dry_run: count and list them)",
        "operate",
        {"200": answer("What was (with dry_run: would be) sent again.", "RetryReport")},
        body="RetrySelection",
        body_required=False,
    )
    return {
        "/v1/deliveries": {"get": listed},
        "/v1/deliveries/retry": {"post": retried_all},
        "/v1/deliveries/{request_id}": {"get": shown},
        "/v1/deliveries/{request_id}/retry": {"post": retried},
    }


# --- endpoints -------------------------------------------------------------------------------

ENDPOINT_ACTIONS: dict[str, tuple[str, str, str, bool]] = {
    "disable": ("Stop sending to the endpoint: new deliveries fail", "DisableBody", "Disabled", False),
    "enable": ("Send to the endpoint again", "EnableBody", "Enabled", False),
    "pause": ("Pause the endpoint: its deliveries wait", "NoFields", "Paused", False),
    "resume": ("Resume the endpoint: its deliveries go on", "NoFields", "Resumed", False),
    "rotate-key": ("Give the endpoint a new X-Webhook-Key", "RotateKeyBody", "KeyRotated", True),
    "rotate-secret": ("Give the endpoint a new signing secret", "RotateSecretBody", "SecretRotated", False),
}
"""Each action: its summary, body, answer, and whether the body is required."""


def endpoint_action_paths(name: Mapping[str, Any], unknown: Mapping[str, Any]) -> dict[str, Any]:
    paths = {}
    for action, (summary, body, done, required) in ENDPOINT_ACTIONS.items():
        paths[f"/v1/endpoints/{{name}}/{action}"] = {
            "post": operation(
                f"{action.replace('-', '_')}_endpoint",
                summary,
                "operate",
                {"200": answer("What it did.", done)},
                body=body,
                body_required=required,
                parameters=[name],
                refusals={**unknown, "409": problem(CHANGED)},
            )
        }
    return paths


def endpoint_paths() -> dict[str, Any]:
    name = in_path("name", "The endpoint's name.")
    unknown = {"404": problem("No endpoint has this name.")}
    location = {"Location": header("The new endpoint's URL.", {"type": "string"}, True)}
    collection = {
        "get": operation(
            "list_endpoints",
            "Every endpoint in force, with its state",
            "read",
            {"200": answer("The endpoints, URLs' credentials masked.", "EndpointList")},
            refusals={"422": problem(QUERY_REFUSED)},
        ),
        "post": operation(
            "create_endpoint",
            "Add an endpoint, as the configuration file writes one",
            "operate",
            {"201": answer("Added: its view.", "EndpointView", location)},
            body="Endpoint",
            refusals={"409": problem("An endpoint has this name already.")},
            invalid=SETTING_REFUSED,
        ),
    }
    return {
        "/v1/endpoints": collection,
        "/v1/endpoints/{name}": endpoint_item(name, unknown),
        **endpoint_action_paths(name, unknown),
    }


def endpoint_item(name: Mapping[str, Any], unknown: Mapping[str, Any]) -> dict[str, Any]:
    """The operations on ``/v1/endpoints/{name}``."""
    force = query("force", {"type": "boolean", "default": False}, "Fail its pending deliveries, remove it.")
    return {
        "get": operation(
            "show_endpoint",
            "One endpoint's settings (every secret masked) and state",
            "read",
            {"200": answer("The endpoint.", "EndpointView")},
            parameters=[name],
            refusals={**unknown, "422": problem(QUERY_REFUSED)},
        ),
        "patch": operation(
            "update_endpoint",
            "Change an endpoint's settings: a JSON merge patch (RFC 7396) of its mapping",
            "operate",
            {"200": answer("Its view after.", "EndpointView")},
            body="EndpointPatch",
            media_types=(MERGE_PATCH, JSON),
            parameters=[name],
            refusals={**unknown, "409": problem(CHANGED)},
            invalid=SETTING_REFUSED,
        ),
        "delete": operation(
            "remove_endpoint",
            "Remove an endpoint (its deliveries stay in the log)",
            "operate",
            {"200": answer("Removed.", "EndpointRemoved")},
            parameters=[name, force],
            refusals={**unknown, "409": problem(BUSY), "422": problem(QUERY_REFUSED)},
        ),
    }


# --- the service -----------------------------------------------------------------------------


def service_paths() -> dict[str, Any]:
    health = operation(
        "health",
        "Whether this API process can work: Redis and the database answer; workers alive",
        None,
        {
            "200": answer("Redis and the database answer (whatever the workers).", "Health"),
            "503": answer("Redis or the database did not answer: the part says which.", "Health"),
        },
    )
    document = operation(
        "openapi",
        "This document",
        None,
        {"200": answer("The OpenAPI 3.1 document.", "OpenApiDocument")},
    )
    return {"/v1/health": {"get": health}, "/v1/openapi.json": {"get": document}}


@cache
def api_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document (built once; do not change what it returns)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Baremeds webhook dispatcher API",
            "version": f"v1 (webhooks {WEBHOOK_VERSION})",
            "description": "Dispatch events and operate the dispatcher over HTTP. Send a token as "
            "Authorization: Bearer <token> (dispatcher api tokens create NAME --scopes ...). "
            "Every refusal is an RFC 9457 problem (application/problem+json).",
        },
        "paths": {**event_paths(), **delivery_paths(), **endpoint_paths(), **service_paths()},
        "components": {
            "schemas": components(),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (dsp_...); its scopes (send, read, operate, "
                    "read:payload) say what it may do.",
                }
            },
        },
        "security": [{BEARER: []}],
    }


async def serve_document(request: Request) -> Response:
    """GET /v1/openapi.json: the document; no token needed."""
    return JSONResponse(api_document())
