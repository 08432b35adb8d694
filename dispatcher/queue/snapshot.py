"""The queue's numbers, read-only (``dispatcher info`` and the Prometheus gauges read the same
function, so they always agree): queued, scheduled, started, failed jobs, the oldest queued age.
Nothing here writes to Redis or cleans RQ's registries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rq import Queue, Worker
from rq.utils import utcparse
from rq.worker import BaseWorker

from . import rq_edge
from .rq_edge import JobField

HEAD_PROBE = 10
"""Queue entries looked at to find the head job's ``enqueued_at`` (an id whose job record is gone
is skipped; RQ drops such ids when it dequeues them)."""


def oldest_queued_age(queue: Queue, now: datetime | None = None) -> float | None:
    """Seconds since the job at the head of the queue was enqueued; None when the queue is empty."""
    connection = queue.connection
    job_ids = connection.lrange(queue.key, 0, HEAD_PROBE - 1)
    if not job_ids:
        return None
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(
                rq_edge.job_key(job_id.decode() if isinstance(job_id, bytes) else job_id),
                JobField.ENQUEUED_AT,
            )
        stamps = pipe.execute()
    for stamp in stamps:
        if not stamp:
            continue
        try:
            enqueued_at = utcparse(stamp.decode() if isinstance(stamp, bytes) else stamp)
        except ValueError:
            continue
        age = ((now or datetime.now(UTC)) - enqueued_at).total_seconds()
        return round(max(0.0, age), 3)
    return None


def queue_snapshot(queue: Queue, now: datetime | None = None) -> dict[str, Any]:
    """The queue's numbers, read-only: queued, scheduled, started, failed_jobs, oldest age."""
    connection = queue.connection
    with connection.pipeline(transaction=False) as pipe:
        pipe.llen(queue.key)
        pipe.zcard(rq_edge.scheduled_key(queue.name))
        pipe.zcard(rq_edge.started_key(queue.name))
        pipe.zcard(rq_edge.failed_key(queue.name))
        queued, scheduled, started, failed = pipe.execute()
    return {
        "queued": int(queued),
        "scheduled": int(scheduled),
        "started": int(started),
        "failed_jobs": int(failed),
        "oldest_queued_age_seconds": oldest_queued_age(queue, now) if queued else None,
    }


def registered_workers(queue: Queue, also: set[str] | frozenset[str] = frozenset()) -> list[BaseWorker]:
    """RQ's workers on this queue, and those of ``also`` whose worker record RQ still keeps
    though its set of workers lost them (Redis flushed under running workers: each rewrites its
    record with its heartbeat, but RQ adds it to the set only at birth), by name."""
    workers = {w.name: w for w in Worker.all(queue=queue)}
    for name in sorted(also - workers.keys()):
        found = Worker.find_by_key(rq_edge.worker_key(name), connection=queue.connection)
        if found is not None:
            workers[name] = found
    return [workers[name] for name in sorted(workers)]


WORKER_COLUMNS = ("hostname", "pid", "state", "current_job", "last_heartbeat")
"""What :func:`worker_records` tells of each worker besides its name (``dispatcher info``'s columns)."""


def worker_records(queue: Queue, also: set[str] | frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """What RQ keeps of each worker :func:`registered_workers` finds, by name: its name and
    :data:`WORKER_COLUMNS` (``last_heartbeat`` as RQ's ``datetime``), read-only."""
    return {
        w.name: {
            "name": w.name,
            "hostname": w.hostname,
            "pid": w.pid,
            "state": w.get_state(),
            "current_job": w.get_current_job_id(),
            "last_heartbeat": w.last_heartbeat,
        }
        for w in registered_workers(queue, also)
    }
