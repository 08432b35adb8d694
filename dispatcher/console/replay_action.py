"""The operator's replay from the console: a time range of an endpoint's deliveries sent to it
again as new deliveries, confirmed with its count first. The same ``ops`` door as ``dispatcher
replay`` (:class:`dispatcher.ops.replay.Replay`), which writes the audit row, its actor the
signed-in user."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from .. import store
from ..ops import replay
from ..ops.door import Actor
from ..times import parse_moment, utcnow
from ..vocabulary import EVENT_NAMES
from .actions import MAX_BULK
from .auth import Principal
from .guard import page, render


def _replay(request: Request, source: dict[str, str]) -> tuple[replay.Replay | None, list[str]]:
    """The replay the form asks for, or the problems with it."""
    settings = request.app.state.runtime.settings
    now = utcnow()
    problems: list[str] = []
    endpoint, event = source.get("endpoint", ""), source.get("event", "")
    if settings.endpoint(endpoint) is None:
        problems.append("choose an endpoint")
    if event and event not in EVENT_NAMES:
        problems.append("no such event")
    try:
        since = parse_moment(source.get("since", ""), now) if source.get("since") else None
        until = parse_moment(source["until"], now) if source.get("until") else None
    except ValueError as exc:
        return None, [str(exc)]
    door = replay.Replay(store.Selection(event=event or None, since=since, until=until), endpoint, now=now)
    if since is None:
        problems.append("since is required (an ISO 8601 time or an age like 2h)")
    elif since >= door.until:
        problems.append("since must be before until")
    return (None, problems) if problems else (door, [])


@page(operator=True)
def replay_range(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    source = {k: str(v).strip() for k, v in (form or request.query_params).items()}
    names = [e.name for e in runtime.settings.endpoints]
    asked = bool(source.get("endpoint") or source.get("since"))
    door, problems = _replay(request, source) if asked else (None, [])
    context: dict[str, Any] = {
        "source": source,
        "endpoints": names,
        "events": EVENT_NAMES,
        "problems": problems,
    }
    if door is None:
        return render(request, who, "replay.html", count=None, **context)
    plan = door.plan(runtime)
    matched = plan.count or 0
    if matched > MAX_BULK:
        problems.append(
            f"{matched:,} deliveries match: over {MAX_BULK:,}; narrow the range or use `dispatcher replay`"
        )
        return render(request, who, "replay.html", count=None, **context)
    if form is None or str(form.get("expected", "")) != str(matched) or not form.get("confirmed"):
        return render(request, who, "replay.html", count=matched, changed=form is not None, **context)
    report = door.carry_out(runtime, Actor.console(who.name), plan)
    return render(
        request,
        who,
        "done.html",
        back="/endpoints",
        message=f"replayed {report.replayed:,} of {report.matched:,} to {door.endpoint} as new deliveries"
        + (f"; {report.skipped:,} could not be replayed" if report.skipped else "")
        + (
            f"; {report.held_back:,} held back: the endpoint is disabled (recorded failed, endpoint_disabled)"
            if report.held_back
            else ""
        ),
    )
