"""What the queue, the workers and the transaction log look like right now (``dispatcher info``,
the console's queue page). Everything here only reads: no RQ registry cleanup, no writes.

:func:`dispatcher.queue.queue_snapshot` is also what the Prometheus collector reads at scrape
time, so ``info`` and the gauges always agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .. import queue as queue_room
from .. import store
from ..runtime import Runtime
from ..worker.liveness import alive_workers, registered


def live_workers(runtime: Runtime) -> list[dict[str, Any]]:
    """The workers on the queue, with the dispatcher's own liveness flag: RQ's registered ones,
    and those beating in the dispatcher's registry that RQ's set lost (Redis flushed under
    running workers: RQ adds a worker to its set only at birth). A worker whose RQ record is
    gone too is listed by name alone until RQ's heartbeat writes it again."""
    beating = registered(runtime.redis)
    rows = queue_room.worker_records(runtime.queue, also=beating)
    names = sorted(beating | rows.keys())
    alive = alive_workers(runtime.redis, names)
    unknown = dict.fromkeys(queue_room.WORKER_COLUMNS)
    return [{**rows.get(name, {"name": name, **unknown}), "alive": name in alive} for name in names]


def collect(runtime: Runtime, now: datetime | None = None) -> dict[str, Any]:
    """The ``info --json`` document. Redis is read first, so an unreachable Redis fails fast."""
    snapshot = queue_room.queue_snapshot(runtime.queue, now)
    workers = live_workers(runtime)
    ordered = [e.name for e in runtime.settings.endpoints if e.ordered]
    waiting = store.ordering.waiting_keys(runtime.engine, ordered, now or datetime.now(UTC))
    return {
        "queue": runtime.settings.queue_name,
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
