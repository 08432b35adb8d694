"""The RQ glue: one job per delivery, its job id the delivery's request_id.

Because the job id is the request_id, a delivery can have at most one job in Redis at a time:
re-queues (reconcile, ``dispatcher retry``) use RQ's atomic ``unique`` enqueue after clearing a
stale record (finished, failed, or held by a dead worker), and a duplicate that slips through
anyway finds the delivery already claimed in the database and does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import utcformat, utcparse

from .config import Settings

JOB_FUNCTION = "dispatcher.jobs.deliver"
FAILURE_TTL = 7 * 24 * 3600
"""How long RQ keeps a poison job in its failed registry (the database keeps the delivery)."""

ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED})


def connect(redis_url: str, socket_timeout: float = 10) -> redis.Redis:
    """A client that fails fast instead of hanging when Redis is away.

    A worker passes a ``socket_timeout`` longer than RQ's blocking dequeue (worker TTL - 15 s).
    """
    return redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )


SENDS_PER_THREAD = 2
"""A batch keeps up to this many claimed deliveries per sender thread: one being sent, one
waiting its turn, so the threads keep sending while the job records and claims the next group."""


def slowest_attempt(settings: Settings) -> float:
    """The longest one POST may take, over the global delivery settings and every endpoint's."""
    rules = [settings.delivery_for(e) for e in settings.endpoints] + [settings.delivery]
    return max(r.timeout + r.connect_timeout for r in rules)


def job_timeout(settings: Settings) -> int:
    """RQ's hard limit for one job: a batch's last sends (each thread's, one after the other)
    plus a minute of taking more and a minute of room for the log write's own retries."""
    return int(SENDS_PER_THREAD * slowest_attempt(settings)) + 120


def make_queue(settings: Settings, connection: redis.Redis) -> Queue:
    return Queue(settings.queue_name, connection=connection, default_timeout=job_timeout(settings))


def _job_options(request_id: str) -> dict:
    return {
        "args": (request_id,),
        "job_id": request_id,
        "result_ttl": 0,
        "failure_ttl": FAILURE_TTL,
        "description": f"deliver {request_id}",
    }


def enqueue_new(queue: Queue, request_ids: Iterable[str]) -> None:
    """Enqueues deliveries that have no job record (new uuid4 ids, or re-opened ones whose stale
    record was cleared) in one pipeline."""
    datas = [Queue.prepare_data(JOB_FUNCTION, **_job_options(rid)) for rid in request_ids]
    if not datas:
        return
    with queue.connection.pipeline() as pipe:
        queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def job_state(queue: Queue, request_id: str) -> tuple[str | None, str | None]:
    """(RQ status, worker name) of the delivery's job, or (None, None) when there is none."""
    status, worker = queue.connection.hmget(Job.key_for(request_id), "status", "worker_name")
    return (status.decode() if status else None, worker.decode() if worker else None)


_TAKE = """
-- Deletes the job records of taken jobs just finished (ARGV[5..]), then pops up to ARGV[3] ids
-- from the head of the queue and marks each job started by this worker (ARGV[2]) at ARGV[4],
-- atomically. An id whose job record is gone is dropped (RQ does the same when it dequeues one).
for i = 5, #ARGV do redis.call('DEL', ARGV[1] .. ARGV[i]) end
local taken = {}
local wanted = tonumber(ARGV[3])
local popped = 0
while #taken < wanted and popped < wanted + 10 do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  popped = popped + 1
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'status', 'started', 'worker_name', ARGV[2], 'started_at', ARGV[4])
    taken[#taken + 1] = id
  end
end
return taken
"""


_TAKE_SCRIPT = redis.Redis().register_script(_TAKE)
"""Run with EVALSHA (the script is sent once per Redis server); no connection is made here."""


def take(queue: Queue, worker: str, count: int, finished: Iterable[str] = ()) -> list[str]:
    """Takes up to ``count`` queued jobs for this worker to run inside its current one (a batch),
    and drops the records of the taken jobs it ``finished`` (delivered or failed: nothing to
    keep), in one round trip. ``count`` may be 0 to drop records only."""
    taken = _TAKE_SCRIPT(
        keys=[queue.key],
        args=[Job.redis_job_namespace_prefix, worker, count, utcformat(datetime.now(UTC)), *finished],
        client=queue.connection,
    )
    return [t.decode() if isinstance(t, bytes) else t for t in taken or []]


def put_back(queue: Queue, request_id: str) -> None:
    """Returns a taken job to the head of the queue."""
    with queue.connection.pipeline() as pipe:
        pipe.hset(Job.key_for(request_id), mapping={"status": JobStatus.QUEUED.value, "worker_name": ""})
        pipe.lpush(queue.key, request_id)
        pipe.execute()


def schedule_taken(queue: Queue, request_id: str, delay_seconds: int) -> None:
    """Schedules a taken job's next attempt (its job record becomes a scheduled RQ job)."""
    job = Job.fetch(request_id, connection=queue.connection)
    queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=delay_seconds))


def job_states(queue: Queue, request_ids: list[str]) -> list[tuple[str | None, str | None]]:
    """:func:`job_state` for many deliveries in one round trip."""
    return [(status, worker) for status, worker, _started in job_states_started(queue, request_ids)]


def job_states_started(
    queue: Queue, request_ids: list[str]
) -> list[tuple[str | None, str | None, datetime | None]]:
    """(RQ status, worker name, when it was started: by RQ, or taken into a batch) of each
    delivery's job, in one round trip."""
    with queue.connection.pipeline(transaction=False) as pipe:
        for request_id in request_ids:
            pipe.hmget(Job.key_for(request_id), "status", "worker_name", "started_at")
        replies = pipe.execute()
    return [(s.decode() if s else None, w.decode() if w else None, _parsed_time(at)) for s, w, at in replies]


def _parsed_time(raw: bytes | None) -> datetime | None:
    try:
        return utcparse(raw.decode()) if raw else None
    except ValueError:
        return None


def ensure_queued(queue: Queue, request_id: str, at: datetime | None = None) -> bool:
    """Makes sure the delivery has a job: enqueued now, or scheduled for ``at``.

    A record that is not active (finished, failed, stopped, canceled) is cleared first. Returns
    True when this call created the job, False when one was already there.
    """
    status, _worker = job_state(queue, request_id)
    if status in ACTIVE_STATUSES:
        return False
    if status is not None:
        remove_job(queue, request_id)
    job = queue.create_job(JOB_FUNCTION, **_job_options(request_id))
    try:
        if at is not None:
            queue.schedule_job(job, at, unique=True)
        else:
            queue.enqueue_job(job, unique=True)
    except DuplicateJobError:
        return False
    return True


def remove_job(queue: Queue, request_id: str) -> None:
    """Deletes the delivery's job record and its registry entries, whatever its state."""
    try:
        job = Job.fetch(request_id, connection=queue.connection)
        job.delete(remove_from_queue=True)
    except NoSuchJobError:
        return
    except (InvalidJobOperation, ValueError):
        # Changed meanwhile (a batch dropped its record, a worker finished its execution): RQ's
        # delete stopped half way. Without its record the job is gone for ensure_queued, and RQ
        # drops registry entries whose job is gone.
        queue.connection.delete(Job.key_for(request_id))


def move_overdue_to_queue(queue: Queue, request_id: str) -> bool:
    """Enqueues a scheduled job now (used when the scheduler is late); False if it was not scheduled."""
    registry = queue.scheduled_job_registry
    if registry.remove(request_id) == 0:
        return False
    try:
        job = Job.fetch(request_id, connection=queue.connection)
    except NoSuchJobError:
        return False
    queue.enqueue_job(job)
    return True


# --- read-only state (``dispatcher info`` and the metrics gauges) ----------------------------

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
