"""What every response carries, and the console's access log.

The headers: a Content-Security-Policy allowing no script at all and no framing, no referrer,
no MIME sniffing, no caching (a page may show PHI once revealed). The access log replaces
uvicorn's: one line per request with the method, the path without its query string, the status,
the time taken and the signed-in name -- the console puts no PHI in a path, and a query string
is never logged.
"""

from __future__ import annotations

import logging
import sys
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
    """Adds :data:`HEADERS` (and HSTS over https) to every response, and writes the access line."""

    def __init__(self, app: ASGIApp, https: bool = False) -> None:
        self.app = app
        self.https = https
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if self.https:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            user = scope.get("state", {}).get("user_name", "-")
            elapsed = (time.perf_counter() - started) * 1000
            self.log.info("%s %s %s %.0fms user=%s", scope["method"], scope["path"], status, elapsed, user)
