"""What every request goes through first and every response carries, and the console's access
log.

A request is refused (400, a short page) when its Host is not one of the console's
(``console.allowed_hosts``), its path or query holds a control character, or its body is over
:data:`MAX_BODY_BYTES`. A path ending in ``/`` is redirected to the path without it. Every
redirect is a path (``Location: /deliveries``), or under ``console.public_url`` when that is
set: never an address a client's Host header wrote. A client that goes away before its request
is read is one access line (status 499), and a mistake of a client's is its access line alone:
never a traceback.

The headers: a Content-Security-Policy allowing no script at all and no framing, no referrer,
no MIME sniffing, no caching (a page may show PHI once revealed). The access log replaces
uvicorn's: one line per request with the method, the path without its query string, the status,
the time taken and the signed-in name -- the console puts no PHI in a path, and a query string
is never logged.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Collection
from urllib.parse import parse_qsl, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config.console_settings import host_name
from ..logs import visible

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}
ACCESS_LOGGER = "dispatcher.console.access"
MAX_BODY_BYTES = 64 * 1024
"""The largest request body the console reads (its forms are a few hundred bytes)."""
CLIENT_GONE = 499
"""The access log's status for a request whose client went away before it was answered."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadRequest(Exception):
    """A client's malformed request: a 400 with this message, and no traceback."""


def request_problem(scope: Scope, hosts: Collection[str]) -> str | None:
    """Why the console does not take this request at all (400), or None."""
    host = Headers(scope=scope).get("host")
    if host is None:
        return "the request has no Host header"
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name or not port.isdigit():
        name = host
    if host_name(name) not in hosts:
        return "this console does not answer to that host name (see console.allowed_hosts)"
    if _CONTROL.search(scope["path"]):
        return "the address holds a control character"
    query = scope.get("query_string", b"").decode("latin-1")
    if any(_CONTROL.search(k) or _CONTROL.search(v) for k, v in parse_qsl(query, keep_blank_values=True)):
        return "the query string holds a control character"
    length = Headers(scope=scope).get("content-length", "0")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        return f"the request body is over {MAX_BODY_BYTES // 1024} KiB"
    return None


def location(target: str, public_url: str | None) -> str:
    """Where a redirect sends the browser: the path and query of ``target`` (one leading slash,
    never ``//host``), under ``public_url`` when one is set."""
    parts = urlsplit(target)
    path = "/" + parts.path.lstrip("/")
    path += f"?{parts.query}" if parts.query else ""
    return (public_url or "") + path


def short_page(scope: Scope, status: int, message: str) -> Response:
    """The console's error page, with no one signed in and nothing read from Redis."""
    app = scope.get("app")
    templates = getattr(getattr(app, "state", None), "templates", None)
    if templates is None:
        return HTMLResponse(f"<!doctype html><title>Not done</title><p>{message}</p>", status_code=status)
    html = templates.get_template("error.html").render(message=message, user=None, page="error")
    return HTMLResponse(html, status_code=status)


def trailing_slash(scope: Scope) -> Response | None:
    """A redirect from ``/deliveries/`` to ``/deliveries`` (a path: never a Host's address)."""
    path = scope["path"]
    if path == "/" or not path.endswith("/"):
        return None
    query = scope.get("query_string", b"").decode("latin-1")
    return RedirectResponse(location("/" + path.strip("/") + (f"?{query}" if query else ""), None), 307)


PATH_LOGGED = 200
"""Characters of a request's path the access log keeps (a client chooses it: long, or holding
control characters, which the line shows as escapes so no one can forge a line or reach a terminal)."""


def access_logger() -> logging.Logger:
    """The access log: stderr, one line per request (set up once)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(getattr(h, "console_access", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s console %(message)s", "%Y-%m-%dT%H:%M:%S"))
        handler.console_access = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.disabled = False
    return logger


class SecureHeaders:
    """The console's outer door: refuses what :func:`request_problem` names, redirects a trailing
    slash, limits the body, adds :data:`HEADERS` (and HSTS over https) to every response, keeps
    every ``Location`` a path, and writes the access line."""

    def __init__(
        self, app: ASGIApp, https: bool = False, hosts: Collection[str] = (), public_url: str | None = None
    ) -> None:
        self.app = app
        self.https = https
        self.hosts = frozenset(hosts)
        self.public_url = public_url
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self._headers(MutableHeaders(scope=message))
            await send(message)

        try:
            await self._answer(scope, receive, send_with_headers)
        except ClientDisconnect:
            status = status or CLIENT_GONE  # nobody is there to answer: the access line says so
        finally:
            status = status or 500
            user = scope.get("state", {}).get("user_name", "-")
            elapsed = (time.perf_counter() - started) * 1000
            path = visible(scope["path"][:PATH_LOGGED] + ("..." if len(scope["path"]) > PATH_LOGGED else ""))
            self.log.info(
                "%s %s %s %.0fms user=%s", scope["method"], path, status, elapsed, visible(str(user))
            )

    def _headers(self, headers: MutableHeaders) -> None:
        for name, value in HEADERS.items():
            headers[name] = value
        if self.https:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        if "location" in headers:
            headers["location"] = location(headers["location"], self.public_url)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = request_problem(scope, self.hosts)
        early = short_page(scope, 400, problem) if problem else trailing_slash(scope)
        if early is not None:
            await early(scope, receive, send)
            return
        answered = False
        read = 0

        async def limited_receive() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > MAX_BODY_BYTES:
                raise BadRequest(f"the request body is over {MAX_BODY_BYTES // 1024} KiB")
            return message

        async def sending(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, sending)
        except BadRequest as exc:
            if answered:
                raise
            await short_page(scope, 400, str(exc))(scope, receive, send)
