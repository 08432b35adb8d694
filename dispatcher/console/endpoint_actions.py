"""The operator's actions on an endpoint, each confirmed first: disable it, enable it
(re-sending what it held back, if asked). Each is a door of :mod:`dispatcher.ops.endpoints`, as
``dispatcher endpoints disable|enable`` uses, its audit row's actor the signed-in user."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..errors import UnknownEndpoint
from ..ops.door import Actor
from ..ops.endpoints import DEFAULT_REASON, Disable, Enable
from .actions import confirm
from .auth import Principal
from .guard import page, refuse

MAX_REASON = 200


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
        return refuse(request, who, 404, "no endpoint has this name")
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
