"""``dispatcher info``: what the queue, the workers and the transaction log look like right now.

:func:`dispatcher.queue.queue_snapshot` is also what the Prometheus collector reads at scrape
time, so ``info`` and the gauges always agree. Everything here only reads: no RQ
registry cleanup, no writes to Redis or the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
import sqlalchemy as sa
from rq import Queue, Worker
from sqlalchemy.engine import Engine

from .. import store
from ..queue import queue_snapshot
from ..reconcile import alive_key

STATUSES = (store.QUEUED, store.IN_FLIGHT, store.RETRYING, store.DELIVERED, store.FAILED)


def live_workers(queue: Queue) -> list[dict[str, Any]]:
    """RQ's registered workers on this queue, with the dispatcher's own liveness flag."""
    workers = sorted(Worker.all(queue=queue), key=lambda w: w.name)
    flags = queue.connection.mget([alive_key(w.name) for w in workers]) if workers else []
    return [
        {
            "name": w.name,
            "hostname": w.hostname,
            "pid": w.pid,
            "state": w.get_state(),
            "current_job": w.get_current_job_id(),
            "last_heartbeat": w.last_heartbeat,
            "alive": flag is not None,
        }
        for w, flag in zip(workers, flags, strict=True)
    ]


def deliveries_by_status(engine: Engine) -> dict[str, int]:
    """Delivery count per status (every known status, 0 when none), in one GROUP BY."""
    table = store.DELIVERIES
    with store.reading(engine) as conn:
        rows = conn.execute(
            sa.select(table.c.status, sa.func.count()).select_from(table).group_by(table.c.status)
        ).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(count) for status, count in rows})
    return counts


def collect(runtime: Any, now: datetime | None = None) -> dict[str, Any]:
    """The ``info --json`` document. Redis is read first, so an unreachable Redis fails fast."""
    queue = runtime.queue
    snapshot = queue_snapshot(queue, now)
    workers = live_workers(queue)
    return {
        "queue": queue.name,
        **snapshot,
        "workers": workers,
        "deliveries_by_status": deliveries_by_status(runtime.engine),
    }


def _age(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


def register(cli: click.Group) -> None:
    @cli.command("info")
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    def info(as_json: bool) -> None:
        """Queue depth, scheduled retries, running and failed jobs, live workers, deliveries by status."""
        from ..cli import print_table, runtime, to_json

        document = collect(runtime())
        if as_json:
            click.echo(to_json(document))
            return
        print_table(
            ("queue", "queued", "oldest queued", "scheduled retries", "started", "failed jobs (RQ)"),
            [
                [
                    document["queue"],
                    document["queued"],
                    _age(document["oldest_queued_age_seconds"]),
                    document["scheduled"],
                    document["started"],
                    document["failed_jobs"],
                ]
            ],
            title="queue",
        )
        print_table(
            ("worker", "host", "pid", "state", "current job", "last heartbeat (UTC)", "alive"),
            [
                [
                    w["name"],
                    w["hostname"],
                    w["pid"],
                    w["state"],
                    w["current_job"],
                    w["last_heartbeat"],
                    "yes" if w["alive"] else "no",
                ]
                for w in document["workers"]
            ],
            title=f"workers ({len(document['workers'])})",
        )
        counts = document["deliveries_by_status"]
        print_table(
            ("status", "deliveries"),
            [[status, count] for status, count in counts.items()] + [["total", sum(counts.values())]],
            title="deliveries",
        )
