"""Serving the API (``dispatcher api``): uvicorn with ``--workers`` processes, each building
the app from the configuration (``DISPATCHER_CONFIG``), on httptools and uvloop.

In ``environment: production`` the API listens beyond 127.0.0.1 only when ``api.https`` says a
TLS proxy is in front: tokens and events must not cross a network in the clear. No access log
(a URL may carry an event's id; a header, a token).
"""

from __future__ import annotations

import sys

from starlette.applications import Starlette

from ..config import Settings
from ..errors import DispatcherError
from ..runtime import get_runtime
from .app import create_app

LOOPBACK = "127.0.0.1"
LOOPBACK_NAMES = frozenset({LOOPBACK, "localhost", "::1"})
"""Addresses of this machine only: the API may listen on them anywhere."""


class CannotServe(DispatcherError):
    """The API must not start as asked; the message says what to change."""


def start_problem(settings: Settings, host: str) -> str | None:
    """Why the API must not listen on ``host``, or None."""
    if settings.environment == "production" and host not in LOOPBACK_NAMES and not settings.api.https:
        return (
            f"in production the API listens only on {LOOPBACK} unless api.https is true (a TLS proxy "
            f"in front); got --host {host}"
        )
    return None


def app_from_config() -> Starlette:
    """The app of a worker process, over the process's runtime (uvicorn's factory)."""
    return create_app(get_runtime())


def serve(host: str, port: int, workers: int = 1) -> None:
    """Serves the API until stopped (Ctrl+C, SIGTERM); returns when it has stopped.

    Raises:
        CannotServe: production and an address beyond this machine without ``api.https``.
    """
    import uvicorn

    runtime = get_runtime()
    problem = start_problem(runtime.settings, host)
    if problem:
        raise CannotServe(problem)
    print(f"api on http://{host}:{port}/v1/ with {workers} worker(s) (Ctrl+C stops it)", file=sys.stderr)
    options = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "warning",
        "server_header": False,
        "proxy_headers": False,
        "http": "httptools",
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "lifespan": "off",
    }
    if workers == 1:
        uvicorn.run(create_app(runtime), **options)  # type: ignore[arg-type]
    else:
        uvicorn.run("dispatcher.api.serve:app_from_config", factory=True, workers=workers, **options)  # type: ignore[arg-type]
