"""``GET /v1/health``, without a token: whether this API process can work -- Redis answers a
ping, the database answers a trivial read (the endpoint catalog's generation, the read every
process makes about once a second) -- and how many workers are alive
(:func:`dispatcher.ops.info.live_workers`).

200 ``{"status": "ok", "redis": {"ok": true}, "database": {"ok": true}, "workers": {"alive":
N}}`` when Redis and the database answer, whatever the workers: no worker alive is worth an
alert (``workers.none_alive``), not a refusal of this process, which can still take events in
(they wait in the queue). Otherwise 503 with ``"status": "unavailable"``, each part that did
not answer ``{"ok": false, "error": "<its error's type>"}`` -- never a message, which could
quote a URL and its password; ``workers.alive`` is ``null`` when Redis did not answer (not
known).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import DispatcherError
from ..ops.info import live_workers
from ..runtime import Runtime
from ..store import endpoint_catalog

FAILURES = (redis.RedisError, SQLAlchemyError, DispatcherError, OSError)
"""What a part that does not answer raises (a refused connection, a timeout, a schema not
current, a database URL this host cannot open)."""


def part(check: Callable[[], Any]) -> dict[str, Any]:
    """``{"ok": true}`` when ``check()`` returns, else ``ok`` false and the error's type."""
    try:
        check()
    except FAILURES as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def alive(runtime: Runtime) -> int | None:
    """How many workers are alive; None when Redis does not say."""
    try:
        return sum(1 for worker in live_workers(runtime) if worker["alive"])
    except FAILURES:
        return None


def report(runtime: Runtime) -> dict[str, Any]:
    """The health document (see the module's docstring)."""
    redis_part = part(lambda: runtime.redis.ping())
    database_part = part(lambda: endpoint_catalog.generation(runtime.engine))
    up = redis_part["ok"] and database_part["ok"]
    return {
        "status": "ok" if up else "unavailable",
        "redis": redis_part,
        "database": database_part,
        "workers": {"alive": alive(runtime) if redis_part["ok"] else None},
    }


async def health(request: Request) -> Response:
    """GET /v1/health: 200 when Redis and the database answer, 503 otherwise; no token needed."""
    document = await run_in_threadpool(report, request.app.state.runtime)
    status = 200 if document["status"] == "ok" else 503
    return JSONResponse(document, status_code=status, headers={"Cache-Control": "no-store"})
