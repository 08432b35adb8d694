"""The read-only pages: deliveries (filtered, keyset-paged, newest first), one delivery, the
endpoints with their last 24 hours, the queue and the audit trail; and the reveal of a
delivery's PHI, an operator's audited action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import DeliveryNotFound
from ..ops import documents, endpoints, info
from ..ops.door import Actor
from ..runtime import Runtime
from ..sending import breaker
from ..sending.breaker import BreakerView
from ..store import audit as audit_trail
from ..store import browsing, search
from ..store.endpoints import FinalDeliveries, final_deliveries
from ..vocabulary import EVENT_NAMES
from . import audit_words, chart, filters, views
from .auth import Principal
from .guard import page, refuse, render

PAGE_ROWS = 50
SEARCH_FIELD = "search by business id"
"""What the deliveries page calls its business-id search (in the note on turning it on)."""
AUDIT_ROWS = 50
MAX_ROW_ID = 18
"""Most digits a ``before`` row id may have (beyond a 64-bit integer is no row)."""


def token_seconds(request: Request) -> int:
    return int(request.app.state.runtime.settings.console.session_hours * 3600)


@page()
def deliveries(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    names = [e.name for e in runtime.settings.endpoints]
    now = datetime.now(UTC)
    chosen = filters.read_filters(
        request.query_params, names, request.app.state.secret, token_seconds(request), now
    )
    rows: list[dict[str, Any]] = []
    cursor, counts = None, {}
    if not chosen.problems:
        rows, cursor = browsing.newest_first(runtime.engine, chosen.selection(), chosen.cursor, PAGE_ROWS)
        # The chips count what the other filters select, so each says what choosing it would list.
        counts = browsing.status_counts(runtime.engine, chosen.selection(statuses=()))
    for row in rows:
        row["reason_text"] = views.reason_column(row)
    return render(
        request,
        who,
        "deliveries.html",
        filters=chosen,
        rows=rows,
        endpoints=names,
        statuses=filters.STATUSES,
        events=EVENT_NAMES,
        counts=counts,
        search=_search_field(runtime.settings.search_key),
        next_page=chosen.query(before=filters.write_cursor(cursor)) if cursor else None,
        first_page=chosen.query() if chosen.cursor else None,
    )


def _carried(form: FormData, *tokens: str) -> dict[str, str]:
    """The filters a search form carries over (hidden fields), and the named tokens."""
    return {k: str(form.get(k, "")) for k in (*filters.TEXT_FIELDS, *tokens) if form.get(k)}


def _search_field(search_key: str | None) -> dict[str, Any]:
    """What the business-id field says: how to turn it on (disabled), or what it finds."""
    if search_key is None:
        return {"enabled": False, "hint": search.needs_key(SEARCH_FIELD)}
    return {"enabled": True, "hint": search.NOT_INDEXED_NOTE}


@page()
def find_patient(request: Request, who: Principal, form: FormData | None) -> Response:
    """The patient search posts the ids; the page it leads to carries only the patient token."""
    assert form is not None
    keyring = request.app.state.runtime.keyring
    patient, encounter = str(form.get("patient_id", "")).strip(), str(form.get("encounter_id", "")).strip()
    params = _carried(form, "find")
    if patient or encounter:
        params["patient"] = filters.patient_token(
            keyring.candidates(patient) if patient else (),
            keyring.candidates(encounter) if encounter else (),
            request.app.state.secret,
        )
    return RedirectResponse(f"/deliveries?{urlencode(params)}", status_code=303)


@page()
def find_business(request: Request, who: Principal, form: FormData | None) -> Response:
    """The business-id search posts the id; the page it leads to carries only its keyed hash,
    encrypted (the search token). Empty, it clears the search."""
    assert form is not None
    search_key = request.app.state.runtime.settings.search_key
    typed = str(form.get("business_id", "")).strip()
    params = _carried(form, "patient")
    if typed:
        if search_key is None:
            return refuse(request, who, 400, search.needs_key(SEARCH_FIELD))
        if len(typed) > search.MAX_BUSINESS_ID:
            return refuse(
                request,
                who,
                400,
                f"business id: over {search.MAX_BUSINESS_ID} characters; paste the id alone",
            )
        key = search.business_key(search_key, typed)
        params["find"] = filters.search_token(key, request.app.state.secret)
    return RedirectResponse(f"/deliveries?{urlencode(params)}", status_code=303)


def _delivery_page(request: Request, who: Principal, reveal: bool) -> Response:
    """The delivery page; revealed (its PHI shown), it is read through the audited reveal."""
    runtime = request.app.state.runtime
    request_id = request.path_params["request_id"]
    try:
        if reveal:
            document = documents.reveal(runtime, request_id, Actor.console(who.name))
        else:
            document = documents.delivery_document(runtime.engine, request_id, runtime.masker)
    except DeliveryNotFound:
        return refuse(request, who, 404, "no delivery has this request id")
    return render(
        request,
        who,
        "delivery.html",
        d=document,
        revealed=reveal,
        has_phi=views.has_phi(document),
        wrapper=views.wrapper_text(document["payload"], reveal, runtime.masker),
        attempts=views.timeline(document["attempts"], reveal),
        done=request.query_params.get("done", ""),
    )


@page()
def delivery(request: Request, who: Principal, form: FormData | None) -> Response:
    return _delivery_page(request, who, reveal=False)


@page(operator=True)
def reveal(request: Request, who: Principal, form: FormData | None) -> Response:
    """Shows the event data and the answers' bodies, once the audit row is written."""
    return _delivery_page(request, who, reveal=True)


def breaker_states(runtime: Runtime, names: list[str]) -> dict[str, BreakerView]:
    """Each endpoint's circuit breaker as Redis holds it; none when Redis does not answer (the
    page says ``—``)."""
    import redis

    try:
        return breaker.states(runtime.redis, names)
    except redis.RedisError:
        return {}


@page()
def endpoint_list(request: Request, who: Principal, form: FormData | None) -> Response:
    """Each endpoint with its state (disabled, paused, its circuit breaker) and its last 24
    hours: the attempts per hour (the chart), and its success rate per delivery -- delivered
    over the deliveries that ended (delivered or failed). The endpoints are those in force now
    (:func:`~dispatcher.ops.endpoints.endpoint_rows` reads the database's again when they changed)."""
    runtime = request.app.state.runtime
    now = datetime.now(UTC)
    since = now - timedelta(hours=chart.HOURS)
    hours: dict[str, list[tuple[int, int, int]]] = {}
    for hour in browsing.hourly_attempts(runtime.engine, since, now):
        hours.setdefault(hour.endpoint, []).append((hour.hour, hour.attempts, hour.delivered))
    finals = final_deliveries(runtime.engine, since)
    listed = endpoints.endpoint_rows(runtime)
    breakers = breaker_states(runtime, [row["name"] for row in listed])
    rows = []
    for row in listed:
        settings = runtime.settings.endpoint(row["name"])
        if settings is None:  # removed a moment ago: the next look leaves it out
            continue
        delivery = runtime.settings.delivery_for(settings)
        day = chart.endpoint_day(hours.get(row["name"], []))
        ended = finals.get(row["name"], FinalDeliveries())
        rows.append(
            {
                **row,
                "settings": settings,
                "delivery": delivery,
                "day": day,
                "ended": ended,
                "chart": chart.svg(day),
                "health": chart.health(row["disabled"], ended.success_rate, day.total),
                "breaker": views.breaker_words(breakers.get(row["name"]), delivery.breaker is None),
            }
        )
    return render(request, who, "endpoints.html", rows=rows)


@page()
def queue_page(request: Request, who: Principal, form: FormData | None) -> Response:
    import redis

    runtime = request.app.state.runtime
    try:
        document = info.collect(runtime)
    except redis.RedisError as exc:
        return render(
            request, who, "queue.html", doc=None, problem=f"Redis is unreachable ({type(exc).__name__})"
        )
    return render(request, who, "queue.html", doc=document, age=info.age_text, problem=None)


@page()
def audit_page(request: Request, who: Principal, form: FormData | None) -> Response:
    """The audit trail newest first, in words, a page of :data:`AUDIT_ROWS` at a time: ``before``
    (a row id) is where the page starts."""
    text = request.query_params.get("before", "")
    before = int(text) if text.isdigit() and len(text) <= MAX_ROW_ID else None
    rows, older = audit_trail.newest_first(request.app.state.runtime.engine, before, AUDIT_ROWS)
    return render(
        request,
        who,
        "audit.html",
        lines=[audit_words.describe(row) for row in rows],
        older=older,
        paged=before is not None,
        limit=AUDIT_ROWS,
    )
