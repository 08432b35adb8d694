"""Serving the API (``dispatcher api``): uvicorn on httptools and uvloop, in ``--workers``
processes, each building the app from the configuration (``DISPATCHER_CONFIG``).

Each worker process listens on a socket of its own with ``SO_REUSEPORT``, so the kernel spreads
new connections over the workers: with one shared socket the worker that wakes first takes a
whole burst of connections, and a client pool can land on one worker while the other idles (the
bench met 64 + 0, at half the throughput). This process starts the workers, and stops them on
SIGTERM or Ctrl+C; a worker that dies stops the others, so a supervisor (systemd) restarts the
whole. Once a worker has built its app it freezes what it loaded out of the garbage collector's
way (``gc.freeze``): a full collection over it took 60-250 ms under load, straight into p99.

In ``environment: production`` the API listens beyond 127.0.0.1 only when ``api.https`` says a
TLS proxy is in front: tokens and events must not cross a network in the clear. No access log
(a URL may carry an event's id; a header, a token).
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import socket
import sys
import threading
from typing import Any

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
            f"in production the API listens only on this machine ({LOOPBACK}, ::1, localhost) unless "
            "api.https is true (a TLS proxy "
            f"in front); got --host {host}"
        )
    return None


def app_from_config() -> Starlette:
    """The app of a worker process, over the process's runtime (uvicorn's factory)."""
    app = create_app(get_runtime())
    gc.collect()
    gc.freeze()
    return app


def listening_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """A TCP socket bound to ``host:port``; ``shared``: with ``SO_REUSEPORT``, one per worker.

    Raises:
        CannotServe: the address is in use or cannot be had.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CannotServe(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (choose another --port)"
        ) from exc
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own SO_REUSEPORT socket, uvicorn until told to stop."""
    import uvicorn

    config = uvicorn.Config("dispatcher.api.serve:app_from_config", factory=True, **options)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port, shared=True)])


def _serve_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """``workers`` worker processes until a signal (or one of them ends); then stops them all."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker, args=(host, port, options), name=f"api-{n}") for n in range(workers)
    ]
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        while not stopping.wait(0.5):
            if any(not p.is_alive() for p in processes):
                break
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    ended = [p.exitcode for p in processes if p.exitcode not in (0, -signal.SIGTERM)]
    if not stopping.is_set() and ended:
        raise CannotServe(f"an API worker ended (exit code {ended[0]}); the others were stopped")


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
    sock = listening_socket(host, port, shared=False)  # in use by anything else: say so now
    options: dict[str, Any] = {
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
    print(f"api on http://{host}:{port}/v1/ with {workers} worker(s) (Ctrl+C stops it)", file=sys.stderr)
    if workers > 1:
        sock.close()
        _serve_workers(host, port, workers, options)
        return
    app = create_app(runtime)
    gc.collect()
    gc.freeze()
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
