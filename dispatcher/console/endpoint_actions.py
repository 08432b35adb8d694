"""The operator's actions on an endpoint, each confirmed first: disable it, enable it
(re-sending what it held back, if asked). The same ``ops`` and ``store`` calls and audit rows as
``dispatcher endpoints disable|enable``, the actor the signed-in user."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import store
from ..ops import audit
from ..ops.endpoints import resend_held_back
from .actions import VIA, confirm
from .auth import Principal
from .guard import page, refuse

MAX_REASON = 200


def _endpoint(request: Request) -> str | None:
    endpoint = request.app.state.runtime.settings.endpoint(request.path_params["name"])
    return endpoint.name if endpoint else None


@page(operator=True)
def disable(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    name = _endpoint(request)
    if name is None:
        return refuse(request, who, 404, "no endpoint has this name")
    if form is None:
        return confirm(
            request,
            who,
            title=f"Disable {name}",
            count=None,
            action=f"/endpoints/{name}/disable",
            cancel="/endpoints",
            reason=True,
            button=f"Disable {name}",
            message="New deliveries to it are recorded failed (endpoint_disabled) and not sent, until it is enabled.",
        )
    reason = str(form.get("reason", "")).strip()[:MAX_REASON] or "disabled by an operator"
    changed = store.disable(runtime.engine, name, reason)
    audit.record(
        runtime.engine,
        "endpoints disable",
        {"endpoint": name, "reason": reason, **VIA},
        {"changed": int(changed)},
        actor=who.name,
    )
    return RedirectResponse("/endpoints", status_code=303)


@page(operator=True)
def enable(request: Request, who: Principal, form: FormData | None) -> Response:
    runtime = request.app.state.runtime
    name = _endpoint(request)
    if name is None:
        return refuse(request, who, 404, "no endpoint has this name")
    held = len(store.held_back(runtime.engine, name))
    if form is None:
        return confirm(
            request,
            who,
            title=f"Enable {name}",
            count=held,
            action=f"/endpoints/{name}/enable",
            cancel="/endpoints",
            resend=held > 0,
            button=f"Enable {name}",
            message=f"Send to it again. {held:,} deliveries were held back while it was disabled.",
        )
    changed = store.enable(runtime.engine, name)
    counts = {"changed": int(changed), "held_back": held, "requeued": 0}
    selection: dict[str, object] = {"endpoint": name, **VIA}
    if held and form.get("resend"):
        counts["requeued"] = resend_held_back(runtime, name)
        selection["resend"] = True
    audit.record(runtime.engine, "endpoints enable", selection, counts, actor=who.name)
    return RedirectResponse("/endpoints", status_code=303)
