"""Signing in with a name and password, and out.

A POST from another site is refused (:func:`.guard.cross_site`), then the CSRF token (the
sign-in form's, bound to no one) is checked, then the attempt is counted (:mod:`.throttle`:
five passwords a minute for a name, twenty from an address), and only a counted attempt has its
password checked; one over the limit is refused (429, ``Retry-After``) whatever its password.
Redis out of reach: 503, and no password is checked.
"""

from __future__ import annotations

import time

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..config.console_settings import ConsoleUser
from . import throttle
from .auth import Principal, forget_session, password_matches, sign_in, sign_out
from .guard import REDIS_AWAY, identify, posted_form, refuse, render, to_login

MAX_NAME = 255


async def login_form(request: Request) -> Response:
    who = await identify(request)
    if isinstance(who, Response):
        return who
    if isinstance(who, Principal):
        return RedirectResponse("/deliveries", status_code=303)
    return render(request, None, "login.html")


def _admit(request: Request, name: str) -> int:
    """0 when this attempt is counted, else the seconds before one may be (see :mod:`.throttle`)."""
    address = request.client.host if request.client else "-"
    return throttle.admit(request.app.state.runtime.redis, name, address, time.time())


def _signed_in(request: Request, user: ConsoleUser) -> Response:
    response = RedirectResponse("/deliveries", status_code=303)
    sign_in(request, user, response)
    return response


async def login(request: Request) -> Response:
    request.state.session = None  # a sign-in form's token is the form cookie's, never a session's
    form = await posted_form(request, None)
    if isinstance(form, Response):
        return form
    name, password = form.get("name", ""), form.get("password", "")
    assert isinstance(name, str) and isinstance(password, str)  # read_form takes no file
    name = name[:MAX_NAME].strip()
    try:
        wait = await run_in_threadpool(_admit, request, name)
    except redis.RedisError:
        return refuse(request, None, 503, REDIS_AWAY)
    if wait:
        problem = f"too many sign-in attempts for this name or from this address; try again in {wait} s"
        response = render(request, None, "login.html", status=429, name=name, problem=problem)
        response.headers["Retry-After"] = str(wait)
        return response
    user = request.app.state.runtime.settings.console.user(name)
    stored = user.password_hash.reveal() if user else None
    # An unknown name costs a hash check too (password_matches(None, ...)): no timing tells it.
    matched = bool(name) and await run_in_threadpool(password_matches, stored, password)
    if not matched or user is None:
        return render(request, None, "login.html", status=401, name=name, problem="wrong name or password")
    try:
        return await run_in_threadpool(_signed_in, request, user)
    except redis.RedisError:
        return refuse(request, None, 503, REDIS_AWAY)


async def logout(request: Request) -> Response:
    """Ends the session (in Redis: a copy of the cookie opens nothing after) and drops the cookie."""
    who = await identify(request)
    if isinstance(who, Response):
        return who
    if getattr(request.state, "session", None) is None:
        return to_login(request)  # no session to end (it ended already, or the proxy signs in)
    form = await posted_form(request, None)
    if isinstance(form, Response):
        return form
    try:
        await run_in_threadpool(sign_out, request)
    except redis.RedisError:
        return refuse(request, None, 503, REDIS_AWAY)
    response = RedirectResponse("/login", status_code=303)
    forget_session(request, response)
    return response
