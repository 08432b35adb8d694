"""The door every page goes through: who is asking (:mod:`.auth`), a CSRF token on every POST,
the operator role where an action needs it; then the page's own work, off the event loop (the
store and Redis clients block)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .auth import Principal, csrf_ok, csrf_token, proxy_principal, session_principal

Handler = Callable[[Request, Principal, FormData | None], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def who_is(request: Request) -> Principal | None | bool:
    """The signed-in user, None when nobody is, False when the proxy names someone not allowed."""
    console = request.app.state.runtime.settings.console
    via_proxy = proxy_principal(request, console)
    if via_proxy is not None:
        return via_proxy
    return session_principal(request, console)


def render(
    request: Request, who: Principal | None, template: str, status: int = 200, **context: Any
) -> Response:
    """A page of the console, with what every page needs: the user, the CSRF token, the nav."""
    templates = request.app.state.templates
    context.update(user=who, csrf=csrf_token(request), page=template.removesuffix(".html"))
    return templates.TemplateResponse(request, template, context, status_code=status)  # type: ignore[no-any-return]


def refuse(request: Request, who: Principal | None, status: int, message: str) -> Response:
    return render(request, who, "error.html", status=status, message=message)


def page(*, operator: bool = False) -> Callable[[Handler], Endpoint]:
    """Makes ``handler(request, who, form)`` a route: signed in (else to the login page), a POST
    carries the session's CSRF token, an ``operator`` page is refused to a viewer (403)."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            who = who_is(request)
            if who is False:
                return refuse(request, None, 403, "your single sign-on name has no role in this console")
            if not isinstance(who, Principal):
                return RedirectResponse("/login", status_code=303)
            request.state.user_name = who.name
            form = None
            if request.method == "POST":
                form = await request.form()
                if not csrf_ok(request, form.get("csrf")):
                    return refuse(
                        request, who, 403, "the form has expired (CSRF token missing or wrong); try again"
                    )
            if operator and not who.operator:
                return refuse(
                    request, who, 403, "only an operator may do this; you are signed in as a viewer"
                )
            return await run_in_threadpool(handler, request, who, form)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
