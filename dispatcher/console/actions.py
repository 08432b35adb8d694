"""The operator's actions, each a confirmation page showing the count (GET) and the action
itself (POST): retry one delivery, retry the failed of a filter, replay a range to an endpoint,
disable and enable an endpoint. Each goes through the same ``ops`` and ``store`` functions as
the CLI and writes the same audit row, its actor the signed-in user.

A bulk action counts again when confirmed: if the count changed meanwhile, it asks again with
the new one. The console re-sends at most :data:`MAX_BULK` deliveries in one request; the CLI
takes any number.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import store
from ..ops import audit, resend
from ..vocabulary import DeliveryStatus
from . import filters
from .auth import Principal
from .guard import page, refuse, render
from .pages import token_seconds

MAX_BULK = 10_000
VIA = {"via": "console"}


def confirm(request: Request, who: Principal, **context: Any) -> Response:
    """The confirmation page: what will happen, to how many, and the button that does it."""
    context.setdefault("fields", {})
    context.setdefault("cancel", "/deliveries")
    return render(request, who, "confirm.html", **context)


@page(operator=True)
def retry_one(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    request_id = request.path_params["request_id"]
    here = f"/deliveries/{request_id}"
    if form is None:
        found = store.get_delivery(runtime.engine, request_id)
        if found is None:
            return refuse(request, who, 404, "no delivery has this request id")
        if found["status"] != DeliveryStatus.FAILED or found["payload_erased_at"] is not None:
            why = (
                "its payload was erased" if found["payload_erased_at"] else f"its status is {found['status']}"
            )
            return refuse(request, who, 409, f"only a failed delivery can be re-sent; {why}")
        return confirm(
            request,
            who,
            title="Retry this delivery",
            count=1,
            action=f"{here}/retry",
            cancel=here,
            message=f"Re-queue {request_id} to {found['endpoint']}: same request id, retry: true, "
            "a fresh attempt budget.",
            button="Retry 1 delivery",
        )
    result, status = resend.retry_one(runtime, request_id)
    requeued = int(result == resend.REQUEUED)
    audit.record(
        runtime.engine,
        "retry",
        {"request_ids": [request_id], **VIA},
        {"requeued": requeued, "left_alone": 1 - requeued},
        actor=who.name,
    )
    return RedirectResponse(f"{here}?{urlencode({'done': result})}", status_code=303)


def _failed_of(request: Request, query: str) -> tuple[filters.Filters, store.Selection]:
    runtime = request.app.state.runtime
    chosen = filters.read_filters(
        dict(parse_qsl(query)),
        [e.name for e in runtime.settings.endpoints],
        request.app.state.secret,
        token_seconds(request),
        datetime.now(UTC),
    )
    selection = replace(chosen.selection(statuses=(DeliveryStatus.FAILED,)), with_payload=True)
    return chosen, selection


@page(operator=True)
def retry_failed(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    query = str(form.get("query", "")) if form else request.url.query
    chosen, selection = _failed_of(request, query)
    back = f"/deliveries?{chosen.query()}"
    if chosen.problems:
        return refuse(request, who, 400, "; ".join(chosen.problems))
    matched = store.count(runtime.engine, selection)
    if matched > MAX_BULK:
        return refuse(
            request,
            who,
            400,
            f"{matched:,} failed deliveries match: over {MAX_BULK:,}; "
            "narrow the filter or use `dispatcher retry --failed`",
        )
    expected = str(form.get("expected", "")) if form else None
    if form is None or expected != str(matched):
        return confirm(
            request,
            who,
            title="Retry the failed deliveries of this filter",
            count=matched,
            cancel=back,
            action="/actions/retry-failed",
            fields={"query": chosen.query(), "expected": str(matched)},
            changed=form is not None,
            message=f"Re-queue {matched:,} failed deliveries (same request ids, each with a fresh attempt "
            "budget). Deliveries whose payload was erased are left alone.",
            button=f"Retry {matched:,} deliveries",
            disabled=matched == 0,
        )
    report = resend.retry_failed(runtime, selection, matched=matched)
    audit.record(
        runtime.engine,
        "retry",
        audit.described(selection, **VIA),
        {
            "matched": matched,
            "requeued": report.requeued,
            "awaiting_reconcile": report.awaiting_reconcile,
            "skipped_endpoint_disabled": report.skipped_endpoint_disabled,
        },
        actor=who.name,
    )
    skipped = report.skipped_endpoint_disabled
    return render(
        request,
        who,
        "done.html",
        back=back,
        message=f"re-queued {report.requeued:,} of {matched:,} failed deliveries"
        + (f"; {skipped:,} left failed: their endpoint is disabled" if skipped else ""),
    )
