"""``POST /v1/events`` and ``POST /v1/events/batch``: events in, as strictly as ``dispatch()``.

A request's shape is checked here (each key's type, named by its path: ``events[3].endpoints``),
then intake runs every gate ``dispatch()`` runs (:mod:`dispatcher.intake.itemized`), naming
each bad field with the same message (``events[3].data.order_number: expected a string``). All
or nothing: one refused event refuses the batch, and nothing is stored or queued. An accepted
request is answered 202 with each event's deliveries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .. import telemetry
from ..errors import IdempotencyConflict
from ..intake.itemized import Dispatched, InvalidRequests
from ..intake.request import DEFAULT_DISPATCHED_BY, DispatchRequest
from ..runtime import Runtime
from . import idempotency
from .auth import authorize
from .bodies import json_object, json_type
from .gather import Gatherer
from .problems import ApiProblem, FieldError, invalid

MAX_BATCH = 1000
REPLAYED = {idempotency.REPLAYED: "true"}
FIELDS = ("event", "data", "dispatched_by", "endpoints", "ordering_key")


def _text(raw: dict[str, Any], key: str, at: str, errors: list[FieldError], required: bool = False) -> Any:
    value = raw.get(key)
    if value is None and key not in raw:
        if required:
            errors.append(FieldError(at + key, "required field is missing"))
        return None
    if not isinstance(value, str) or not value:
        errors.append(FieldError(at + key, f"expected a non-empty string, got {json_type(value)}"))
    return value


def _endpoints(raw: dict[str, Any], at: str, errors: list[FieldError]) -> list[str] | None:
    if "endpoints" not in raw:
        return None
    value = raw["endpoints"]
    if not isinstance(value, list):
        errors.append(
            FieldError(at + "endpoints", f"expected an array of endpoint names, got {json_type(value)}")
        )
        return None
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name:
            errors.append(
                FieldError(f"{at}endpoints[{index}]", f"expected an endpoint name, got {json_type(name)}")
            )
    if len(set(map(str, value))) != len(value):
        errors.append(FieldError(at + "endpoints", "names an endpoint more than once"))
    return value


def one_request(raw: Any, at: str, errors: list[FieldError], key: str | None) -> DispatchRequest | None:
    """The request an event's JSON asks for (``at``: its path, ``events[3].``), or None with its
    mistakes added to ``errors``."""
    if not isinstance(raw, dict):
        errors.append(FieldError(at.rstrip(".") or "body", f"expected an object, got {json_type(raw)}"))
        return None
    before = len(errors)
    errors.extend(
        FieldError(at + k, f"unknown field; expected {', '.join(FIELDS)}") for k in raw if k not in FIELDS
    )
    event = _text(raw, "event", at, errors, required=True)
    if "data" not in raw:
        errors.append(FieldError(at + "data", "required field is missing"))
    by = _text(raw, "dispatched_by", at, errors)
    ordering = _text(raw, "ordering_key", at, errors)
    endpoints = _endpoints(raw, at, errors)
    if len(errors) > before:
        return None
    by = by if by is not None else DEFAULT_DISPATCHED_BY
    return DispatchRequest(
        event, raw["data"], endpoints, by, key, ordering, trace=telemetry.current_context()
    )


def _refused(exc: InvalidRequests, batch: bool) -> ApiProblem:
    """Intake's refusal as a problem: 413 for a body over ``delivery.max_payload_bytes``, else 422."""
    errors = [FieldError((f"events[{p.index}]." if batch else "") + p.field, p.detail) for p in exc.problems]
    if exc.too_large:
        return ApiProblem(413, errors[0].detail, errors=errors)
    return invalid(errors)


async def dispatched(
    gatherer: Gatherer, requests: Sequence[DispatchRequest], batch: bool
) -> list[Dispatched]:
    """Intake's answer for the requests (stored with whatever else is waiting), or the problem
    it makes."""
    try:
        return await gatherer.dispatch(requests)
    except InvalidRequests as exc:
        raise _refused(exc, batch) from exc
    except IdempotencyConflict as exc:
        raise idempotency.conflict() from exc


def _deliveries(answer: Dispatched) -> list[dict[str, str]]:
    return [{"request_id": rid, "endpoint": endpoint} for rid, endpoint in answer.deliveries]


def _batch_requests(body: dict[str, Any], key: str | None) -> list[DispatchRequest]:
    errors: list[FieldError] = []
    errors.extend(FieldError(k, "unknown field; expected events") for k in body if k != "events")
    items = body.get("events")
    if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
        got = f"{len(items)} events" if isinstance(items, list) else json_type(items)
        errors.append(FieldError("events", f"expected an array of 1 to {MAX_BATCH} events, got {got}"))
        raise invalid(errors)
    requests = [
        one_request(raw, f"events[{i}].", errors, None if key is None else f"{key}#{i}")
        for i, raw in enumerate(items)
    ]
    if errors:
        raise invalid(errors)
    return [r for r in requests if r is not None]


def _requests(body: dict[str, Any], batch: bool, key: str | None) -> list[DispatchRequest]:
    """The requests a body asks for, or a 422 naming every mistake of their shape."""
    if batch:
        return _batch_requests(body, key)
    errors: list[FieldError] = []
    one = one_request(body, "", errors, key)
    if one is None:
        raise invalid(errors)
    return [one]


async def _accept(request: Request, batch: bool) -> Response:
    """Either route: authorize, read, check, mark the key, dispatch, answer."""
    await authorize(request, "send")
    runtime: Runtime = request.app.state.runtime
    key = idempotency.header_key(request.headers)
    body = await json_object(request, runtime.settings.api.max_body_bytes)
    requests = _requests(body, batch, key)
    client = request.app.state.redis
    mark = None
    if key is not None and not request.app.state.gate.limiter.skipping():  # Redis away: the log decides
        mark = idempotency.begin(
            client, runtime.keyring, key, idempotency.digest("batch" if batch else "event", body)
        )
    if mark is not None and mark.answer is not None:
        return Response(mark.answer, status_code=202, headers=REPLAYED, media_type="application/json")
    answer = None
    try:
        answers = await dispatched(request.app.state.gatherer, requests, batch)
        if batch:
            content: dict[str, Any] = {"events": [{"deliveries": _deliveries(a)} for a in answers]}
        else:
            content = {"deliveries": _deliveries(answers[0])}
        answer = json.dumps(content, separators=(",", ":"))
    finally:
        if mark is not None:
            idempotency.finish(client, mark, runtime.settings.idempotency_ttl_seconds, answer)
    replayed = key is not None and all(a.repeated for a in answers)
    return Response(
        answer, status_code=202, headers=REPLAYED if replayed else {}, media_type="application/json"
    )


async def post_event(request: Request) -> Response:
    """POST /v1/events: one event."""
    return await _accept(request, batch=False)


async def post_batch(request: Request) -> Response:
    """POST /v1/events/batch: up to 1,000 events, all or nothing."""
    return await _accept(request, batch=True)
