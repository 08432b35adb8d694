"""``/v1/deliveries``: the log newest first a page at a time, one delivery with its attempts,
and the re-sends (one delivery, or the failed ones of a filter) through the doors the CLI and
the console use (:mod:`dispatcher.ops.resend`), audited under the token's name.

A page is read by keyset (:func:`dispatcher.store.browsing.newest_first`): ``next_cursor`` is
the last row's ``created_at`` and ``request_id`` as base64url JSON, opaque to the client, and
the page after it costs what the first does. Query parameters are checked as strictly as a
body: an unknown one, one given twice, or a bad value is a 422 naming it. ``since`` and
``until`` are ISO 8601 times (a time without an offset is taken as UTC) or an age as the CLI
takes it (``30m``, ``2h``, ``7d``); ``since`` is inclusive, ``until`` exclusive. ``endpoint``
takes any name, a removed endpoint's included (its deliveries stay in the log).

A delivery's payload, and each attempt's answer body and error (a partner's words about the
patient), go only to a token with ``read:payload``, whose every such read writes a ``delivery
reveal`` audit row; for any other token they are ``null`` and ``payload_hidden`` is ``true``.
Every time in a response is ISO 8601 UTC (``2026-01-30T12:00:00Z``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import store
from ..errors import DeliveryNotFound
from ..ops import documents, resend
from ..ops.door import Actor
from ..runtime import Runtime
from ..store import browsing
from ..store.browsing import Cursor
from ..times import format_utc, parse_moment
from ..vocabulary import EVENT_NAMES, STATUSES
from .auth import Caller, authorize
from .bodies import json_object, json_type
from .problems import ApiProblem, FieldError, invalid

VIA = "api"
"""The front end an audit row names (``Actor(token name, "api")``)."""
PAYLOAD_SCOPE = "read:payload"
LIST_QUERY = ("status", "event", "endpoint", "since", "until", "limit", "cursor")
RETRY_FIELDS = ("event", "endpoint", "since", "until", "dry_run")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR = 512
MAX_NAME = 200
"""The longest endpoint name a filter takes."""
MAX_REQUEST_ID = 255
HIDDEN_ATTEMPT_FIELDS = ("response_body", "error")
BAD_CURSOR = "not a cursor this API gave: pass next_cursor as it came, or leave cursor out"


def json_ready(value: Any) -> Any:
    """``value`` with every datetime as ISO 8601 UTC text, tuples as lists."""
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, Mapping):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def query_values(request: Request, allowed: Sequence[str]) -> dict[str, str]:
    """The request's query parameters by name; a 422 naming each unknown or repeated one."""
    params = request.query_params
    errors = [
        FieldError(name[:40], f"unknown query parameter; expected {', '.join(allowed) or 'none'}")
        for name in dict.fromkeys(params.keys())
        if name not in allowed
    ]
    errors += [FieldError(name, "given more than once") for name in allowed if len(params.getlist(name)) > 1]
    if errors:
        raise invalid(errors)
    return {name: params[name] for name in allowed if name in params}


def plain_name(value: Any) -> bool:
    """Whether ``value`` could name an endpoint or a delivery: text of 1 to :data:`MAX_NAME`
    printable characters (no NUL, which a database refuses)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable()


def moment(name: str, text: Any, errors: list[FieldError]) -> datetime | None:
    """``since`` or ``until`` as a UTC time, or None with its mistake added to ``errors``."""
    if not isinstance(text, str):
        errors.append(FieldError(name, f"expected an ISO 8601 time, got {json_type(text)}"))
        return None
    try:
        return parse_moment(text).astimezone(UTC)
    except OverflowError:
        errors.append(FieldError(name, "out of range: give a time from the year 1 to 9999 in UTC"))
    except ValueError as exc:
        errors.append(FieldError(name, str(exc)))
    return None


def selected(given: Mapping[str, Any], errors: list[FieldError]) -> store.Selection:
    """The :class:`~dispatcher.store.Selection` of the filters ``given`` (``status``, ``event``,
    ``endpoint``, ``since``, ``until``), each mistake added to ``errors``."""
    for name, known in (("status", STATUSES), ("event", EVENT_NAMES)):
        if name in given and given[name] not in known:
            errors.append(FieldError(name, f"expected one of {', '.join(known)}"))
    endpoint = given.get("endpoint")
    if "endpoint" in given and not plain_name(endpoint):
        errors.append(FieldError("endpoint", f"expected an endpoint name (1 to {MAX_NAME} characters)"))
    since = moment("since", given["since"], errors) if "since" in given else None
    until = moment("until", given["until"], errors) if "until" in given else None
    if since is not None and until is not None and since >= until:
        errors.append(FieldError("until", "must be later than since"))
    return store.Selection(
        statuses=(given["status"],) if given.get("status") in STATUSES else (),
        event=given.get("event"),
        endpoint=endpoint,
        since=since,
        until=until,
    )


def write_cursor(cursor: Cursor) -> str:
    """The page after ``cursor`` as an opaque, URL-safe text."""
    text = json.dumps([cursor[0].astimezone(UTC).isoformat(), cursor[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def read_cursor(text: str) -> Cursor:
    """The cursor :func:`write_cursor` wrote.

    Raises:
        ValueError: ``text`` is not one.
    """
    if len(text) > MAX_CURSOR or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError(BAD_CURSOR)
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(BAD_CURSOR) from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError(BAD_CURSOR)
    when, request_id = value
    created = datetime.fromisoformat(when)
    if created.tzinfo is None or not plain_name(request_id) or len(request_id) > MAX_REQUEST_ID:
        raise ValueError(BAD_CURSOR)
    return created.astimezone(UTC), request_id


def page_asked(values: Mapping[str, str]) -> tuple[store.Selection, Cursor | None, int]:
    """The filters, the cursor and the limit of ``GET /v1/deliveries`` (422 naming each mistake)."""
    errors: list[FieldError] = []
    selection = selected(values, errors)
    limit = DEFAULT_LIMIT
    if "limit" in values:
        text = values["limit"]
        if re.fullmatch(r"[0-9]{1,4}", text) and 1 <= int(text) <= MAX_LIMIT:
            limit = int(text)
        else:
            errors.append(FieldError("limit", f"expected a whole number from 1 to {MAX_LIMIT}"))
    cursor = None
    if "cursor" in values:
        try:
            cursor = read_cursor(values["cursor"])
        except (ValueError, OverflowError):
            errors.append(FieldError("cursor", BAD_CURSOR))
    if errors:
        raise invalid(errors)
    return selection, cursor, limit


def _page(runtime: Runtime, selection: store.Selection, cursor: Cursor | None, limit: int) -> dict[str, Any]:
    rows, after = browsing.newest_first(runtime.engine, selection, cursor, limit)
    return {
        "deliveries": [{name: json_ready(row[name]) for name in browsing.LISTED_FIELDS} for row in rows],
        "next_cursor": write_cursor(after) if after is not None else None,
    }


async def list_deliveries(request: Request) -> Response:
    """GET /v1/deliveries: a page of deliveries, newest first, and the cursor of the next."""
    await authorize(request, "read")
    selection, cursor, limit = page_asked(query_values(request, LIST_QUERY))
    runtime: Runtime = request.app.state.runtime
    return JSONResponse(await run_in_threadpool(_page, runtime, selection, cursor, limit))


def no_delivery() -> ApiProblem:
    return ApiProblem(404, "no delivery has this request_id: GET /v1/deliveries lists them")


def hidden(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the payload and the partner's answers (bodies, errors)."""
    attempts = [{**a, **dict.fromkeys(HIDDEN_ATTEMPT_FIELDS)} for a in document["attempts"]]
    return {**document, "payload": None, "attempts": attempts}


def _document(runtime: Runtime, request_id: str, caller: Caller) -> dict[str, Any]:
    if not plain_name(request_id) or len(request_id) > MAX_REQUEST_ID:
        raise no_delivery()
    revealed = caller.may(PAYLOAD_SCOPE)
    try:
        if revealed:
            document = documents.reveal(runtime, request_id, Actor(caller.name, VIA))
        else:
            document = hidden(documents.delivery_document(runtime.engine, request_id, runtime.masker))
    except DeliveryNotFound:
        raise no_delivery() from None
    payload = document.pop("payload")
    shown = json_ready(document)
    shown["payload"] = payload
    shown["payload_hidden"] = not revealed
    return dict(shown)


async def show_delivery(request: Request) -> Response:
    """GET /v1/deliveries/{request_id}: the delivery with every attempt; its payload and the
    partner's answers only for ``read:payload`` (audited)."""
    caller = await authorize(request, "read")
    runtime: Runtime = request.app.state.runtime
    request_id = request.path_params["request_id"]
    return JSONResponse(await run_in_threadpool(_document, runtime, request_id, caller))


def not_retried(verdict: resend.Verdict) -> ApiProblem:
    """A 409 saying why the delivery is not re-sent, and what would."""
    why = {
        resend.NOT_FAILED: f"its status is {verdict.status}; only a failed delivery is re-sent",
        resend.ERASED: "its payload was erased (retention or log erase), so it cannot be re-sent",
        resend.ENDPOINT_DISABLED: f"its endpoint {verdict.endpoint} is disabled: POST "
        f'/v1/endpoints/{verdict.endpoint}/enable with {{"resend_held_back": true}} re-sends what it held back',
    }
    return ApiProblem(409, f"delivery not re-sent: {why.get(verdict.result, verdict.why)}")


def _retry(runtime: Runtime, request_id: str, caller: Caller) -> dict[str, Any]:
    if not plain_name(request_id) or len(request_id) > MAX_REQUEST_ID:
        raise no_delivery()
    door = resend.Retry([request_id])
    plan = door.plan(runtime)
    (verdict,) = plan.verdicts
    if verdict.result == resend.MISSING:
        raise no_delivery()
    if verdict.result != resend.REQUEUED:
        raise not_retried(verdict)
    (done,) = door.carry_out(runtime, Actor(caller.name, VIA), plan).verdicts
    if done.result != resend.REQUEUED:  # it changed between the plan and the run
        raise not_retried(done)
    return {"request_id": done.request_id, "endpoint": done.endpoint, "result": done.result.value}


async def retry_one(request: Request) -> Response:
    """POST /v1/deliveries/{request_id}/retry: re-queue one failed delivery (202); 404 when
    unknown, 409 saying why when it may not be re-sent."""
    caller = await authorize(request, "operate")
    runtime: Runtime = request.app.state.runtime
    request_id = request.path_params["request_id"]
    body = await json_object(request, runtime.settings.api.max_body_bytes, empty_ok=True)
    if body:
        raise invalid([FieldError(k[:40], "unknown field; this action takes no body") for k in body])
    return JSONResponse(await run_in_threadpool(_retry, runtime, request_id, caller), status_code=202)


def retry_asked(body: Mapping[str, Any]) -> tuple[store.Selection, bool]:
    """The selection and ``dry_run`` of ``POST /v1/deliveries/retry`` (422 naming each mistake)."""
    errors = [
        FieldError(k[:40], f"unknown field; expected {', '.join(RETRY_FIELDS)}")
        for k in body
        if k not in RETRY_FIELDS
    ]
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        errors.append(FieldError("dry_run", f"expected true or false, got {json_type(dry_run)}"))
    selection = selected({k: v for k, v in body.items() if k in RETRY_FIELDS}, errors)
    if errors:
        raise invalid(errors)
    return selection, bool(dry_run)


def _retry_failed(
    runtime: Runtime, selection: store.Selection, dry_run: bool, caller: Caller
) -> dict[str, Any]:
    door = resend.RetryFailed(selection)
    plan = door.plan(runtime)
    actor = Actor(caller.name, VIA)
    if dry_run or door.nothing_to_do(plan):
        report = door.preview(runtime, actor, plan, dry_run=dry_run)
    else:
        report = door.carry_out(runtime, actor, plan)
    return dict(json_ready(report.as_dict()))


async def retry_failed(request: Request) -> Response:
    """POST /v1/deliveries/retry: the failed deliveries matching ``event``, ``endpoint``,
    ``since`` and ``until`` (all of them when none is given) re-queued, as ``dispatcher retry
    --failed`` does; with ``dry_run`` counted and listed, nothing changed."""
    caller = await authorize(request, "operate")
    runtime: Runtime = request.app.state.runtime
    body = await json_object(request, runtime.settings.api.max_body_bytes, empty_ok=True)
    selection, dry_run = retry_asked(body)
    return JSONResponse(await run_in_threadpool(_retry_failed, runtime, selection, dry_run, caller))
