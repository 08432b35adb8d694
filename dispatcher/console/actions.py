"""The operator's re-sends from the console, each a confirmation page showing the count (GET)
and the action itself (POST): retry one delivery, retry the failed of a filter. Each is an
``ops`` door (:mod:`dispatcher.ops.resend`), the one the CLI goes through: it plans, runs and
writes the audit row, its actor the signed-in user; this page only reads the form, shows the
plan, asks and renders.

A bulk action plans again when confirmed: if the count changed meanwhile, it asks again with
the new one. The console re-sends at most :data:`MAX_BULK` deliveries in one request; the CLI
takes any number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..ops import resend
from ..ops.door import Actor, Plan
from . import filters
from .auth import Principal
from .guard import page, refuse, render
from .pages import token_seconds

MAX_BULK = 10_000


def confirm(request: Request, who: Principal, **context: Any) -> Response:
    """The confirmation page: what will happen, to how many, and the button that does it."""
    context.setdefault("fields", {})
    context.setdefault("cancel", "/deliveries")
    return render(request, who, "confirm.html", **context)


def told(plan: Plan) -> str:
    """A plan as the confirmation page says it: its description, then its notes."""
    return " ".join(f"{sentence}." for sentence in (plan.description, *plan.notes))


@page(operator=True)
def retry_one(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    request_id = request.path_params["request_id"]
    here = f"/deliveries/{request_id}"
    door = resend.Retry([request_id])
    if form is None:
        plan = door.plan(runtime)
        (verdict,) = plan.verdicts
        if verdict.result == resend.MISSING:
            return refuse(request, who, 404, "no delivery has this request id")
        if not verdict.retryable:
            return refuse(request, who, 409, f"only a failed delivery can be re-sent; {verdict.why}")
        return confirm(
            request,
            who,
            title="Retry this delivery",
            count=plan.count,
            action=f"{here}/retry",
            cancel=here,
            message=told(plan),
            button="Retry 1 delivery",
        )
    (verdict,) = door.carry_out(runtime, Actor.console(who.name)).verdicts
    return RedirectResponse(f"{here}?{urlencode({'done': verdict.result})}", status_code=303)


def _filters(request: Request, query: str) -> filters.Filters:
    return filters.read_filters(
        dict(parse_qsl(query)),
        [e.name for e in request.app.state.runtime.settings.endpoints],
        request.app.state.secret,
        token_seconds(request),
        datetime.now(UTC),
    )


@page(operator=True)
def retry_failed(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    chosen = _filters(request, str(form.get("query", "")) if form else request.url.query)
    back = f"/deliveries?{chosen.query()}"
    if chosen.problems:
        return refuse(request, who, 400, "; ".join(chosen.problems))
    door = resend.RetryFailed(chosen.selection())
    plan = door.plan(runtime)
    matched = plan.count or 0
    if matched > MAX_BULK:
        return refuse(
            request,
            who,
            400,
            f"{matched:,} failed deliveries match: over {MAX_BULK:,}; "
            "narrow the filter or use `dispatcher retry --failed`",
        )
    if form is None or str(form.get("expected", "")) != str(matched):
        return confirm(
            request,
            who,
            title="Retry the failed deliveries of this filter",
            count=matched,
            cancel=back,
            action="/actions/retry-failed",
            fields={"query": chosen.query(), "expected": str(matched)},
            changed=form is not None,
            message=told(plan),
            button=f"Retry {matched:,} deliveries",
            disabled=matched == 0,
        )
    report = door.carry_out(runtime, Actor.console(who.name), plan)
    skipped = report.skipped_endpoint_disabled
    return render(
        request,
        who,
        "done.html",
        back=back,
        message=f"re-queued {report.requeued:,} of {report.matched:,} failed deliveries"
        + (f"; {skipped:,} left failed: their endpoint is disabled" if skipped else ""),
    )
