"""The operator's actions on one endpoint, each asked first on its own page: disable it, enable it
(re-sending what it held back, if asked), pause and resume it, rotate its key or its signing
secret, remove it. Each is a door of :mod:`dispatcher.ops` -- :mod:`~dispatcher.ops.endpoints`,
:mod:`~dispatcher.ops.endpoint_admin` -- the one ``dispatcher endpoints ...`` goes through, which
checks, writes and audits, its actor the signed-in user; this page reads the form, shows the
plan, asks and renders.

A secret typed here (a new key) is never written back into a page; a new signing secret is shown
once, on the page that answers the rotation, and nowhere else. A mistake the door finds (a key
too short, deliveries still pending) is its one line on the form again.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import ConfigError, DispatcherError, UnknownEndpoint
from ..ops import endpoint_admin as admin
from ..ops.door import Actor, Door, Plan
from ..ops.endpoints import DEFAULT_REASON, Disable, Enable
from ..times import format_utc, parse_duration
from .actions import confirm
from .auth import Principal
from .guard import page, refuse, render

MAX_REASON = 200
MAX_KEY = 4096
"""The longest key the form takes (the door says what a key must be)."""
DEFAULT_SECRET_GRACE = "24h"
"""What the signing-secret rotation's grace field holds at first (the door's own default)."""
NO_ENDPOINT = "no endpoint has this name"


@page(operator=True)
def disable(request: Request, who: Principal, form: FormData | None) -> Response:
    reason = str(form.get("reason", "")).strip()[:MAX_REASON] if form else ""
    return _act(request, who, form, Disable(request.path_params["name"], reason or DEFAULT_REASON))


@page(operator=True)
def enable(request: Request, who: Principal, form: FormData | None) -> Response:
    resend = bool(form and form.get("resend"))
    return _act(request, who, form, Enable(request.path_params["name"], resend=resend))


def _act(request: Request, who: Principal, form: FormData | None, door: Disable | Enable) -> Response:
    """The confirmation page (GET) or the action itself (POST): a 404 page for an unknown name."""
    runtime = request.app.state.runtime
    try:
        plan = door.plan(runtime)
    except UnknownEndpoint:
        return refuse(request, who, 404, NO_ENDPOINT)
    if form is not None:
        door.carry_out(runtime, Actor.console(who.name), plan)
        return RedirectResponse("/endpoints", status_code=303)
    disabling, name = isinstance(door, Disable), plan.selection["endpoint"]
    verb = "Disable" if disabling else "Enable"
    return confirm(
        request,
        who,
        title=f"{verb} {name}",
        count=plan.count,
        action=f"/endpoints/{name}/{verb.lower()}",
        cancel="/endpoints",
        reason=disabling,
        resend=bool(plan.count),
        button=f"{verb} {name}",
        message=plan.description,
    )


def told(plan: Plan) -> str:
    """A plan as the page says it: its description, then its notes, each one sentence."""
    return " ".join(s if s.endswith(".") else f"{s}." for s in (plan.description, *plan.notes))


def ask(request: Request, who: Principal, verb: str, status: int = 200, **context: Any) -> Response:
    """The page that asks before an endpoint action (``endpoint_action.html``): ``verb`` is its
    path's last part (``rotate-key``); ``context`` what the page shows and the fields it has."""
    name = request.path_params["name"]
    context.setdefault("count", None)
    context.setdefault("problem", None)
    return render(
        request,
        who,
        "endpoint_action.html",
        status=status,
        name=name,
        action=f"/endpoints/{name}/{verb}",
        **context,
    )


def finished(request: Request, who: Principal, message: str) -> Response:
    return render(request, who, "done.html", back="/endpoints", message=message)


def one_line(exc: DispatcherError) -> str:
    """A door's refusal as a page says it: ``key: must be ...`` for a setting."""
    if isinstance(exc, ConfigError):
        return f"{exc.setting}: {exc.problem}"
    return str(exc)


def _run(
    request: Request, who: Principal, door: Door[Any], plan: Plan | None = None
) -> tuple[Any, str | None]:
    """Carries out ``door`` for the signed-in user: its outcome, or the door's one-line refusal."""
    runtime = request.app.state.runtime
    try:
        return door.carry_out(runtime, Actor.console(who.name), plan), None
    except DispatcherError as exc:
        return None, one_line(exc)


def _planned(request: Request, who: Principal, door: Door[Any]) -> Plan | Response:
    """The door's plan, or the page that refuses it (404 for an unknown name, else its line)."""
    try:
        return door.plan(request.app.state.runtime)
    except UnknownEndpoint:
        return refuse(request, who, 404, NO_ENDPOINT)
    except DispatcherError as exc:
        return refuse(request, who, 409, one_line(exc))


def _toggle(
    request: Request, who: Principal, form: FormData | None, door: admin.Pause | admin.Resume
) -> Response:
    """Pause (back to the endpoints page, which says so) or resume (said in words): asked first,
    with the deliveries it holds (pending) or sends on (waiting)."""
    plan = _planned(request, who, door)
    if isinstance(plan, Response):
        return plan
    pausing = isinstance(door, admin.Pause)
    verb = "pause" if pausing else "resume"
    context: dict[str, Any] = {
        "title": f"{verb.title()} {door.name}",
        "count": plan.count,
        "counted": "pending" if pausing else "waiting",
    }
    if form is None:
        return ask(request, who, verb, message=told(plan), **context)
    done, problem = _run(request, who, door, plan)
    if problem is not None:
        return ask(request, who, verb, 409, problem=problem, **context)
    if isinstance(done, admin.Paused):
        return RedirectResponse("/endpoints", status_code=303)
    if not done.changed:
        return finished(request, who, f"{door.name} was not paused; nothing changed")
    woken = f"{done.woken:,} waiting {'delivery' if done.woken == 1 else 'deliveries'}"
    return finished(request, who, f"resumed {door.name}: {woken} sent on, in dispatch order")


@page(operator=True)
def pause(request: Request, who: Principal, form: FormData | None) -> Response:
    """A paused endpoint's deliveries wait (recorded, queued for later, no attempt used)."""
    return _toggle(request, who, form, admin.Pause(request.path_params["name"]))


@page(operator=True)
def resume(request: Request, who: Principal, form: FormData | None) -> Response:
    """Its waiting deliveries go on, in dispatch order."""
    return _toggle(request, who, form, admin.Resume(request.path_params["name"]))


def _grace(text: str) -> int | None:
    """The grace field in whole seconds (``24h``, ``30m``, ``90``; ``0``: none); None when left
    empty (the door's own default).

    Raises:
        ValueError: naming the field, when it is no duration.
    """
    text = text.strip()
    if not text:
        return None
    if text == "0":
        return 0
    try:
        return round(parse_duration(text))
    except ValueError as exc:
        raise ValueError(f"grace: {exc}") from None


def _known(request: Request) -> bool:
    runtime = request.app.state.runtime
    runtime.refresh_endpoints()
    return runtime.settings.endpoint(request.path_params["name"]) is not None


@page(operator=True)
def rotate_key(request: Request, who: Principal, form: FormData | None) -> Response:
    """A new ``X-Webhook-Key``, sent from the next attempt on (the header carries one value, so
    there is no grace); the key typed is never shown back."""
    name = request.path_params["name"]
    if not _known(request):
        return refuse(request, who, 404, NO_ENDPOINT)
    context: dict[str, Any] = {"title": f"Rotate the key of {name}", "key_field": True}
    if form is None:
        return ask(request, who, "rotate-key", **context)
    key = str(form.get("key", ""))
    if not key.strip() or len(key) > MAX_KEY:
        return ask(request, who, "rotate-key", 400, problem="key: type the new key", **context)
    done, problem = _run(request, who, admin.RotateKey(name, key))
    if problem is not None:
        return ask(request, who, "rotate-key", 400, problem=problem, **context)
    return finished(
        request, who, f"rotated the key of {done.name}: the new key is sent from the next attempt on"
    )


@page(operator=True)
def rotate_secret(request: Request, who: Principal, form: FormData | None) -> Response:
    """A new signing secret, shown once; the old one signs beside it until its grace ends."""
    name = request.path_params["name"]
    if not _known(request):
        return refuse(request, who, 404, NO_ENDPOINT)
    grace_text = str(form.get("grace", "")) if form is not None else DEFAULT_SECRET_GRACE
    context: dict[str, Any] = {"title": f"Rotate the signing secret of {name}", "grace_field": grace_text}
    if form is None:
        plan = _planned(request, who, admin.RotateSecret(name))
        if isinstance(plan, Response):
            return plan
        return ask(request, who, "rotate-secret", message=told(plan), **context)
    try:
        grace = _grace(grace_text)
    except ValueError as exc:
        return ask(request, who, "rotate-secret", 400, problem=str(exc), **context)
    door = admin.RotateSecret(name) if grace is None else admin.RotateSecret(name, grace)
    done, problem = _run(request, who, door)
    if problem is not None:
        return ask(request, who, "rotate-secret", 400, problem=problem, **context)
    until = done.retiring_until
    return render(
        request,
        who,
        "endpoint_secret.html",
        name=done.name,
        secret=done.secret,
        retiring_until=format_utc(until) if until is not None else None,
    )


@page(operator=True)
def remove(request: Request, who: Principal, form: FormData | None) -> Response:
    """Removed, its log rows kept; refused while deliveries to it are pending, unless the
    operator ticks "fail them" (the count asked again if it changed meanwhile)."""
    name = request.path_params["name"]
    force = bool(form and form.get("force"))
    door = admin.Remove(name, force=force)
    plan = _planned(request, who, door)
    if isinstance(plan, Response):
        return plan
    pending = plan.count or 0
    context: dict[str, Any] = {
        "title": f"Remove {name}",
        "message": told(plan),
        "count": pending,
        "counted": "pending",
        "force_field": pending > 0,
        "expected": pending,
        "danger": True,
    }
    if form is None:
        return ask(request, who, "remove", **context)
    if str(form.get("expected", "")) != str(pending):
        return ask(request, who, "remove", 409, changed=True, **context)
    done, problem = _run(request, who, door, plan)
    if problem is not None:
        return ask(request, who, "remove", 409, problem=problem, **context)
    failed = (
        f"; {done.failed:,} pending {'delivery' if done.failed == 1 else 'deliveries'} failed"
        if done.failed
        else ""
    )
    return finished(request, who, f"removed {done.name}{failed}; its deliveries stay in the log")
