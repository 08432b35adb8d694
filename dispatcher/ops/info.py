"""What the queue, the workers and the transaction log look like right now (``dispatcher info``,
the console's queue page). Everything here only reads: no RQ registry cleanup, no writes.

:func:`dispatcher.queue.queue_snapshot` is also what the Prometheus collector reads at scrape
time, so ``info`` and the gauges always agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rq import Queue, Worker

from .. import queue as queue_room
from .. import store
from ..runtime import Runtime
from ..worker.liveness import alive_workers


def live_workers(queue: Queue) -> list[dict[str, Any]]:
    """RQ's registered workers on this queue, with the dispatcher's own liveness flag."""
    workers = sorted(Worker.all(queue=queue), key=lambda w: w.name)
    alive = alive_workers(queue.connection, [w.name for w in workers])
    return [
        {
            "name": w.name,
            "hostname": w.hostname,
            "pid": w.pid,
            "state": w.get_state(),
            "current_job": w.get_current_job_id(),
            "last_heartbeat": w.last_heartbeat,
            "alive": w.name in alive,
        }
        for w in workers
    ]


def collect(runtime: Runtime, now: datetime | None = None) -> dict[str, Any]:
    """The ``info --json`` document. Redis is read first, so an unreachable Redis fails fast."""
    queue = runtime.queue
    snapshot = queue_room.queue_snapshot(queue, now)
    workers = live_workers(queue)
    ordered = [e.name for e in runtime.settings.endpoints if e.ordered]
    waiting = store.ordering.waiting_keys(runtime.engine, ordered, now or datetime.now(UTC))
    return {
        "queue": queue.name,
        **snapshot,
        "workers": workers,
        "deliveries_by_status": store.status_counts(runtime.engine),
        "ordered_endpoints": [{"endpoint": name, **waiting[name]} for name in ordered],
    }


def age_text(seconds: float | None) -> str | None:
    """``42s``, ``3m 5s``, ``2h 10m``: an age as a person reads it."""
    if seconds is None:
        return None
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m {whole % 60}s"
    return f"{whole // 3600}h {whole % 3600 // 60}m"
