"""The operator's replay from the console: a time range of an endpoint's deliveries sent to it
again as new deliveries, confirmed with its count first. The same ``ops`` door and audit row as
``dispatcher replay``, the actor the signed-in user."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..ops import audit, replay
from ..times import parse_moment
from ..vocabulary import EVENT_NAMES
from .actions import MAX_BULK, VIA
from .auth import Principal
from .guard import page, render


def _range(request: Request, source: dict[str, str]) -> tuple[store.Selection | None, list[str]]:
    """The replay's selection from the form, or the problems with it."""
    settings = request.app.state.runtime.settings
    now = datetime.now(UTC)
    problems: list[str] = []
    endpoint, event = source.get("endpoint", ""), source.get("event", "")
    if settings.endpoint(endpoint) is None:
        problems.append("choose an endpoint")
    if event and event not in EVENT_NAMES:
        problems.append("no such event")
    try:
        since = parse_moment(source.get("since", ""), now) if source.get("since") else None
        until = min(parse_moment(source["until"], now), now) if source.get("until") else now
    except ValueError as exc:
        return None, [str(exc)]
    if since is None:
        problems.append("since is required (an ISO 8601 time or an age like 2h)")
    elif since >= until:
        problems.append("since must be before until")
    if problems:
        return None, problems
    return store.Selection(event=event or None, endpoint=endpoint, since=since, until=until), []


@page(operator=True)
def replay_range(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    source = {k: str(v).strip() for k, v in (form or request.query_params).items()}
    names = [e.name for e in runtime.settings.endpoints]
    asked = bool(source.get("endpoint") or source.get("since"))
    selection, problems = _range(request, source) if asked else (None, [])
    context: dict[str, Any] = {
        "source": source,
        "endpoints": names,
        "events": EVENT_NAMES,
        "problems": problems,
    }
    if selection is None:
        return render(request, who, "replay.html", count=None, **context)
    matched = store.count(runtime.engine, selection)
    if matched > MAX_BULK:
        problems.append(
            f"{matched:,} deliveries match: over {MAX_BULK:,}; narrow the range or use `dispatcher replay`"
        )
        return render(request, who, "replay.html", count=None, **context)
    if form is None or str(form.get("expected", "")) != str(matched) or not form.get("confirmed"):
        return render(request, who, "replay.html", count=matched, changed=form is not None, **context)
    report = replay.replay(runtime, selection, selection.endpoint or "", matched=matched)
    audit.record(
        runtime.engine,
        "replay",
        audit.described(selection, **VIA),
        {
            "matched": matched,
            "replayed": report.replayed,
            "skipped": report.skipped,
            "held_back": report.held_back,
        },
        actor=who.name,
    )
    return render(
        request,
        who,
        "done.html",
        back="/endpoints",
        message=f"replayed {report.replayed:,} of {matched:,} to {selection.endpoint} as new deliveries"
        + (f"; {report.skipped:,} could not be replayed" if report.skipped else "")
        + (
            f"; {report.held_back:,} held back: the endpoint is disabled (recorded failed, endpoint_disabled)"
            if report.held_back
            else ""
        ),
    )
