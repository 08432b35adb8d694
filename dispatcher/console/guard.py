"""The door every page goes through: who is asking (:mod:`.auth`, Redis read off the event loop),
on every POST a same-origin request with a well-formed form and its user's CSRF token, the
operator role where an action needs it; then the page's own work, off the event loop (the store
and Redis clients block).

Same origin: a POST whose ``Origin`` is not the console's own (the scheme -- https with
``console.https`` --, a host of ``console.allowed_hosts`` and the port of its Host header, or the
origin of ``console.public_url``) is refused (403); without ``Origin``, one whose
``Sec-Fetch-Site`` is neither ``same-origin`` nor ``none`` is refused too. ``Origin: null`` counts
as none: a browser sends it for every POST from a page with ``Referrer-Policy: no-referrer``, the
console's own included. A client that sends neither (curl, an old browser) has only its CSRF
token checked.

A malformed form (a file, a control character, too many fields, a broken multipart body) is a
400 page, a session cookie this console never made a 400 page that clears it, and Redis out of
reach a 503 page: never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..config.console_settings import host_name
from . import sessions
from .auth import (
    Principal,
    attach_cookies,
    csrf_ok,
    csrf_token,
    forget_session,
    proxy_principal,
    session_principal,
)
from .web import BadRequest

Handler = Callable[[Request, Principal, FormData | None], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
MAX_FIELDS = 50
MAX_FIELD_BYTES = 16 * 1024
REDIS_AWAY = "the console cannot reach Redis; try again"
EXPIRED_FORM = "the form has expired (CSRF token missing or wrong); try again"
CROSS_SITE = "cross-site form refused: it was not sent from this console's own pages"
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})
"""The ``Sec-Fetch-Site`` values of a request a page of the console itself (or the user) made."""
DEFAULT_PORTS = {"http": 80, "https": 443}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""A control character no field of the console's forms holds (a tab or a line break may)."""


def who_is(request: Request) -> Principal | None | bool:
    """The signed-in user, None when nobody is, False when the proxy names someone not allowed.
    Reads Redis: call it off the event loop (:func:`identify`)."""
    console = request.app.state.runtime.settings.console
    via_proxy = proxy_principal(request, console)
    if via_proxy is not None:
        request.state.session = None
        return via_proxy
    return session_principal(request, console)


async def identify(request: Request) -> Principal | None | bool | Response:
    """:func:`who_is`, or the page that answers when it cannot be known: a malformed session
    cookie (400, the cookie cleared), Redis out of reach (503)."""
    try:
        return await run_in_threadpool(who_is, request)
    except sessions.MalformedCookie:
        response = refuse(
            request, None, 400, "the session cookie is not one this console makes; sign in again"
        )
        forget_session(request, response)
        return response
    except redis.RedisError:
        return refuse(request, None, 503, REDIS_AWAY)


def to_login(request: Request) -> Response:
    """To the sign-in page; a browser whose session ended drops its cookie."""
    response = RedirectResponse("/login", status_code=303)
    if getattr(request.state, "session_ended", False):
        forget_session(request, response)
    return response


async def read_form(request: Request) -> FormData:
    """The posted form, whole and well-formed, else :class:`~.web.BadRequest`."""
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except (HTTPException, MultiPartException) as exc:
        raise BadRequest(f"the form is malformed: {getattr(exc, 'detail', None) or exc}") from None
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise BadRequest("the form carries a file; the console's forms take none")
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise BadRequest("a form field holds a control character")
    return form


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host name, port) of an origin, None when it is not an http(s) one."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    name = host_name(parts.hostname or "")
    if scheme not in DEFAULT_PORTS or name is None or port is None or parts.username is not None:
        return None
    return scheme, name, port


def own_origins(request: Request) -> set[tuple[str, str, int]]:
    """The console's origins: as this request reached it (its Host, when allowed), and that of
    ``console.public_url``."""
    console = request.app.state.runtime.settings.console
    hosts = getattr(request.app.state, "hosts", None) or console.hosts()
    scheme = "https" if console.https else request.url.scheme
    origins: set[tuple[str, str, int]] = set()
    reached = _origin(scheme, request.headers.get("host", ""))
    if reached is not None and reached[1] in hosts:
        origins.add(reached)
    public = urlsplit(console.public_url or "")
    if (published := _origin(public.scheme, public.netloc)) is not None:
        origins.add(published)
    return origins


def same_origin(request: Request) -> bool:
    """Whether a POST comes from the console's own pages, as far as its headers tell: its
    ``Origin`` is the console's; without one, ``Sec-Fetch-Site`` (if sent) is ``same-origin``
    or ``none``. ``Origin: null`` is no origin: a browser sends it for every POST from a page
    with ``Referrer-Policy: no-referrer`` (the console's, and any other site's that wants to)."""
    origin = request.headers.get("origin")
    if origin is not None and origin.strip() != "null":
        parts = urlsplit(origin.strip())
        if parts.path or parts.query or parts.fragment:
            return False
        return _origin(parts.scheme.lower(), parts.netloc) in own_origins(request)
    fetch_site = request.headers.get("sec-fetch-site")
    return fetch_site is None or fetch_site.strip().lower() in SAME_ORIGIN_FETCH


def cross_site(request: Request, who: Principal | None) -> Response | None:
    """The 403 page for a POST from another site (:func:`same_origin`), else None."""
    if request.method == "POST" and not same_origin(request):
        return refuse(request, who, 403, CROSS_SITE)
    return None


async def posted_form(request: Request, who: Principal | None) -> FormData | Response:
    """A POST's form once it is known to come from this console's own page for ``who``: sent
    from its origin, read within bounds, carrying the right CSRF token; else the refusing page."""
    if (refused := cross_site(request, who)) is not None:
        return refused
    try:
        form = await read_form(request)
    except BadRequest as exc:
        return refuse(request, who, 400, str(exc))
    if not csrf_ok(request, form.get("csrf"), who):
        return refuse(request, who, 403, EXPIRED_FORM)
    return form


def render(
    request: Request, who: Principal | None, template: str, status: int = 200, **context: Any
) -> Response:
    """A page of the console, with what every page needs: the user, the CSRF token, the nav."""
    templates = request.app.state.templates
    context.update(user=who, csrf=csrf_token(request, who), page=template.removesuffix(".html"))
    response = templates.TemplateResponse(request, template, context, status_code=status)
    attach_cookies(request, response)
    return response  # type: ignore[no-any-return]


def refuse(request: Request, who: Principal | None, status: int, message: str) -> Response:
    return render(request, who, "error.html", status=status, message=message)


async def _checked(request: Request, operator: bool) -> tuple[Principal, FormData | None] | Response:
    """Who asks and the form they post, or the page that refuses them."""
    who = await identify(request)
    if isinstance(who, Response):
        return who
    if who is False:
        return refuse(request, None, 403, "your single sign-on name has no role in this console")
    if not isinstance(who, Principal):
        return to_login(request)
    request.state.user_name = who.name
    form = None
    if request.method == "POST":
        posted = await posted_form(request, who)
        if isinstance(posted, Response):
            return posted
        form = posted
    if operator and not who.operator:
        return refuse(request, who, 403, "only an operator may do this; you are signed in as a viewer")
    return who, form


def page(*, operator: bool = False) -> Callable[[Handler], Endpoint]:
    """Makes ``handler(request, who, form)`` a route: signed in (else to the login page), a POST
    comes from the console's own pages and carries a well-formed form with its user's CSRF
    token, an ``operator`` page is refused to a viewer (403)."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            checked = await _checked(request, operator)
            if isinstance(checked, Response):
                return checked
            who, form = checked
            await run_in_threadpool(
                request.app.state.runtime.refresh_endpoints
            )  # the database's, within a second
            return await run_in_threadpool(handler, request, who, form)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        return endpoint

    return wrap
