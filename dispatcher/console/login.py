"""Signing in with a name and password, and out; five failures for a name within a minute lock
it out for a minute (429)."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .auth import Principal, csrf_ok, password_matches, sign_in, sign_out
from .guard import refuse, render, who_is
from .throttle import LoginThrottle

MAX_NAME = 255


async def login_form(request: Request) -> Response:
    who = who_is(request)
    if isinstance(who, Principal):
        return RedirectResponse("/deliveries", status_code=303)
    return render(request, None, "login.html")


async def login(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("name", ""))[:MAX_NAME].strip(), str(form.get("password", ""))
    if not csrf_ok(request, form.get("csrf")):
        return refuse(request, None, 403, "the form has expired (CSRF token missing or wrong); try again")
    throttle: LoginThrottle = request.app.state.throttle
    wait = throttle.locked(name, time.monotonic())
    if wait:
        response = render(
            request,
            None,
            "login.html",
            status=429,
            name=name,
            problem=f"too many failed attempts for this name; try again in {int(wait) + 1} s",
        )
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    user = request.app.state.runtime.settings.console.user(name)
    stored = user.password_hash.reveal() if user else None
    if not name or not await run_in_threadpool(password_matches, stored, password):
        throttle.failed(name, time.monotonic())
        return render(request, None, "login.html", status=401, name=name, problem="wrong name or password")
    throttle.succeeded(name)
    sign_in(request, name)
    return RedirectResponse("/deliveries", status_code=303)


async def logout(request: Request) -> Response:
    form = await request.form()
    if csrf_ok(request, form.get("csrf")):
        sign_out(request)
    return RedirectResponse("/login", status_code=303)
