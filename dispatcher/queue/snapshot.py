"""The queue's numbers, read-only (``dispatcher info`` and the Prometheus gauges read the same
function, so they always agree): queued, scheduled, started, failed jobs, the oldest queued age.
Nothing here writes to Redis or cleans RQ's registries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rq import Queue, Worker
from rq.job import Job
from rq.utils import utcparse

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
            pipe.hget(Job.key_for(job_id.decode() if isinstance(job_id, bytes) else job_id), "enqueued_at")
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
        pipe.zcard(queue.scheduled_job_registry.key)
        pipe.zcard(queue.started_job_registry.key)
        pipe.zcard(queue.failed_job_registry.key)
        queued, scheduled, started, failed = pipe.execute()
    return {
        "queued": int(queued),
        "scheduled": int(scheduled),
        "started": int(started),
        "failed_jobs": int(failed),
        "oldest_queued_age_seconds": oldest_queued_age(queue, now) if queued else None,
    }


def registered_workers(queue: Queue, also: set[str] | frozenset[str] = frozenset()) -> list[Any]:
    """RQ's workers on this queue, and those of ``also`` whose worker record RQ still keeps
    though its set of workers lost them (Redis flushed under running workers: each rewrites its
    record with its heartbeat, but RQ adds it to the set only at birth), by name."""
    workers = {w.name: w for w in Worker.all(queue=queue)}
    for name in sorted(also - workers.keys()):
        found = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=queue.connection)
        if found is not None:
            workers[name] = found
    return [workers[name] for name in sorted(workers)]
