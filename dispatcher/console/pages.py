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

from .. import store
from ..errors import DeliveryNotFound
from ..ops import audit, documents, endpoints, info
from ..ops.door import Actor
from ..store import browsing
from ..vocabulary import EVENT_NAMES
from . import chart, filters, views
from .auth import Principal
from .guard import page, refuse, render

PAGE_ROWS = 50
AUDIT_ROWS = 200


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
    cursor = None
    if not chosen.problems:
        rows, cursor = browsing.newest_first(runtime.engine, chosen.selection(), chosen.cursor, PAGE_ROWS)
    return render(
        request,
        who,
        "deliveries.html",
        filters=chosen,
        rows=rows,
        endpoints=names,
        statuses=filters.STATUSES,
        events=EVENT_NAMES,
        counts=store.status_counts(runtime.engine),
        next_page=chosen.query(before=filters.write_cursor(cursor)) if cursor else None,
        first_page=chosen.query() if chosen.cursor else None,
    )


@page()
def find_patient(request: Request, who: Principal, form: FormData | None) -> Response:
    """The patient search posts the ids; the page it leads to carries only the patient token."""
    assert form is not None
    keyring = request.app.state.runtime.keyring
    patient, encounter = str(form.get("patient_id", "")).strip(), str(form.get("encounter_id", "")).strip()
    params = {k: str(form.get(k, "")) for k in filters.TEXT_FIELDS if form.get(k)}
    if patient or encounter:
        params["patient"] = filters.patient_token(
            keyring.candidates(patient) if patient else (),
            keyring.candidates(encounter) if encounter else (),
            request.app.state.secret,
        )
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


@page()
def endpoint_list(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    now = datetime.now(UTC)
    hours: dict[str, list[tuple[int, int, int]]] = {}
    for hour in browsing.hourly_attempts(runtime.engine, now - timedelta(hours=chart.HOURS), now):
        hours.setdefault(hour.endpoint, []).append((hour.hour, hour.attempts, hour.delivered))
    rows = []
    for row in endpoints.endpoint_rows(runtime):
        settings = runtime.settings.require_endpoint(row["name"])
        day = chart.endpoint_day(hours.get(row["name"], []))
        rows.append(
            {
                **row,
                "settings": settings,
                "delivery": runtime.settings.delivery_for(settings),
                "day": day,
                "chart": chart.svg(day),
                "health": chart.health(row["disabled"], day),
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
    entries = list(reversed(audit.entries(request.app.state.runtime.engine, limit=AUDIT_ROWS)))
    return render(request, who, "audit.html", entries=entries, limit=AUDIT_ROWS)
