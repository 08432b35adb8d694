"""The RQ glue: one job per delivery, its job id the delivery's request_id.

Because the job id is the request_id, a delivery can have at most one job in Redis at a time:
re-queues (reconcile, ``dispatcher retry``) use RQ's atomic ``unique`` enqueue after clearing a
stale record (finished, failed, or held by a dead worker), and a duplicate that slips through
anyway finds the delivery already claimed in the database and does nothing.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import redis
from rq import Queue
from rq.exceptions import DuplicateJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.utils import now, utcformat, utcparse

from .. import lua
from ..config import Settings
from . import rq_edge
from .rq_edge import JobField
from .traces import LAST_ATTEMPT_FIELD, TRACE_FIELD

JobQueue: TypeAlias = Queue
"""RQ's queue, as the rooms above hold it (``Runtime.queue``): they hand it back to this room's
functions and never reach inside it, so none of them imports rq to name its type."""

JOB_FUNCTION = "dispatcher.jobs.deliver"
FAILURE_TTL = 7 * 24 * 3600
"""How long RQ keeps a poison job in its failed registry (the database keeps the delivery)."""

ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED})

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


def make_queue(settings: Settings, connection: redis.Redis) -> JobQueue:
    """The delivery queue (``queue_name``) on ``connection``, with RQ's hard limit per job."""
    return Queue(settings.queue_name, connection=connection, default_timeout=job_timeout(settings))


def _job_options(request_id: str) -> dict[str, Any]:
    return {
        "args": (request_id,),
        "job_id": request_id,
        "result_ttl": 0,
        "failure_ttl": FAILURE_TTL,
        "description": f"deliver {request_id}",
    }


def enqueue_new(
    queue: Queue, request_ids: Iterable[str], traces: Mapping[str, str] | None = None
) -> list[str]:
    """Enqueues deliveries that have no job, in one pipeline; returns those it enqueued.
    ``traces``: a delivery's trace context (:data:`.traces.TRACE_FIELD`), when it has one.

    Each enqueue is atomic and unique (``enqueue.lua``): a delivery whose job exists already
    (reconcile queued it while this dispatch was waiting on Redis, say) keeps that one job.
    """
    ids = list(request_ids)
    if not ids:
        return []
    version = queue.get_redis_server_version()
    with queue.connection.pipeline() as pipe:
        pipe.sadd(rq_edge.QUEUES, queue.key)
        for request_id in ids:
            job = queue.create_job(JOB_FUNCTION, **_job_options(request_id))
            job.origin, job.enqueued_at, job.redis_server_version = queue.name, now(), version
            fields = _fields(job) + _trace_pair(traces, request_id)
            _ENQUEUE_SCRIPT(keys=[job.key, queue.key], args=[job.id, *fields], client=pipe)
        results = pipe.execute()[1:]
    return [request_id for request_id, created in zip(ids, results, strict=True) if created]


def schedule_new(
    queue: Queue, request_ids: Iterable[str], after: timedelta, traces: Mapping[str, str] | None = None
) -> list[str]:
    """Schedules jobs for deliveries that have none, to run ``after`` from now, in one pipeline
    (``schedule.lua``, unique as :func:`enqueue_new`); returns those it scheduled."""
    ids = list(request_ids)
    if not ids:
        return []
    at = datetime.now(UTC) + after
    score = calendar.timegm(at.utctimetuple())
    registry = rq_edge.scheduled_key(queue.name)
    version = queue.get_redis_server_version()
    with queue.connection.pipeline() as pipe:
        pipe.sadd(rq_edge.QUEUES, queue.key)
        for request_id in ids:
            job = queue.create_job(JOB_FUNCTION, **_job_options(request_id))
            job.origin, job.redis_server_version = queue.name, version
            fields = _fields(job, status=rq_edge.SCHEDULED) + _trace_pair(traces, request_id)
            _SCHEDULE_SCRIPT(keys=[job.key, registry], args=[job.id, score, *fields], client=pipe)
        results = pipe.execute()[1:]
    return [request_id for request_id, created in zip(ids, results, strict=True) if created]


def wake(queue: Queue, request_ids: Iterable[str]) -> list[str]:
    """Sends deliveries to the queue now: a scheduled job is moved there (``wake.lua``, one
    pipeline for all); one with no job, or a finished one, gets a new job; a queued or running
    one is left as it is. Returns those it moved or queued."""
    ids = list(request_ids)
    if not ids:
        return []
    stamp = utcformat(datetime.now(UTC))
    registry = rq_edge.scheduled_key(queue.name)
    with queue.connection.pipeline() as pipe:
        for request_id in ids:
            _WAKE_SCRIPT(
                keys=[rq_edge.job_key(request_id), registry, queue.key],
                args=[request_id, stamp],
                client=pipe,
            )
        moved = pipe.execute()
    woken = [rid for rid, was_moved in zip(ids, moved, strict=True) if was_moved]
    rest = [rid for rid, was_moved in zip(ids, moved, strict=True) if not was_moved]
    for request_id, (status, _worker) in zip(rest, job_states(queue, rest), strict=True):
        if status not in ACTIVE_STATUSES and ensure_queued(queue, request_id):
            woken.append(request_id)
    return woken


def _fields(job: Job, status: str | None = None) -> list[Any]:
    """The job's record as RQ writes it (``Job.to_dict``), as field, value pairs; with
    ``status`` as its status word when given."""
    record = job.to_dict()
    if status is not None:
        record[JobField.STATUS] = status
    pairs: list[Any] = []
    for field, value in record.items():
        if value is not None:
            pairs += [field, value if isinstance(value, bytes | str) else str(value)]
    return pairs


def _trace_pair(traces: Mapping[str, str] | None, request_id: str) -> list[Any]:
    context = traces.get(request_id) if traces else None
    return [TRACE_FIELD, context] if context else []


def job_state(queue: Queue, request_id: str) -> tuple[str | None, str | None]:
    """(RQ status, worker name) of the delivery's job, or (None, None) when there is none."""
    status, worker = queue.connection.hmget(
        rq_edge.job_key(request_id), JobField.STATUS, JobField.WORKER_NAME
    )
    return (_text(status), _text(worker))


def _text(raw: bytes | str | None) -> str | None:
    if not raw:
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


def script_text(name: str) -> str:
    """The Lua script ``name`` of this room as Redis runs it: RQ's names (:data:`rq_edge.LUA_NAMES`)
    on its first line, then the ``.lua`` file."""
    return rq_edge.LUA_NAMES + lua.load(__package__, name)


_TAKE_SCRIPT = redis.Redis().register_script(script_text("take.lua"))
_ENQUEUE_SCRIPT = redis.Redis().register_script(script_text("enqueue.lua"))
_SCHEDULE_SCRIPT = redis.Redis().register_script(script_text("schedule.lua"))
_WAKE_SCRIPT = redis.Redis().register_script(script_text("wake.lua"))
_RESCHEDULE_SCRIPT = redis.Redis().register_script(script_text("reschedule.lua"))
_STAND_IN_SCRIPT = redis.Redis().register_script(script_text("stand_in.lua"))
"""Run with EVALSHA (each script is sent once per Redis server); no connection is made here."""


def take(
    queue: Queue,
    worker: str,
    count: int,
    finished: Iterable[str] = (),
    traces: dict[str, tuple[str | None, str | None]] | None = None,
) -> list[str]:
    """Takes up to ``count`` queued jobs for this worker to run inside its current one (a batch),
    and drops the records of the taken jobs it ``finished`` (delivered or failed: nothing to
    keep) that are still its own, in one round trip. ``count`` may be 0 to drop records only.
    With ``traces`` (a worker that traces), each taken job's trace contexts are put there, read
    in the same round trip."""
    fields = [TRACE_FIELD, LAST_ATTEMPT_FIELD] if traces is not None else ["", ""]
    taken = _TAKE_SCRIPT(
        keys=[queue.key],
        args=[rq_edge.JOB_PREFIX, worker, count, utcformat(datetime.now(UTC)), *fields, *finished],
        client=queue.connection,
    )
    got = [t.decode() if isinstance(t, bytes) else t for t in taken or []]
    if traces is None:
        return got
    ids = got[0::3]
    for request_id, dispatch, last in zip(ids, got[1::3], got[2::3], strict=True):
        traces[request_id] = (dispatch or None, last or None)
    return ids


def put_back(queue: Queue, request_id: str) -> None:
    """Returns a taken job to the head of the queue."""
    with queue.connection.pipeline() as pipe:
        pipe.hset(
            rq_edge.job_key(request_id), mapping={JobField.STATUS: rq_edge.QUEUED, JobField.WORKER_NAME: ""}
        )
        pipe.lpush(queue.key, request_id)
        pipe.execute()


def schedule_taken(queue: Queue, request_id: str, worker: str, delay_seconds: int, *, claimed: bool) -> bool:
    """Schedules the next look at a job ``worker`` took into a batch (its job record becomes a
    scheduled RQ job). RQ's scheduler and a mover racing can queue a job twice, and another
    worker take the second copy: the worker that ``claimed`` the delivery decides its retry
    whoever holds the record; one whose claim was refused (the delivery waits behind its key's
    head) leaves the job alone once another holds it, so its wait never pushes back that
    worker's retry. A job whose record is gone gets a new one, scheduled. Returns False when it
    left the job alone."""
    at = datetime.now(UTC) + timedelta(seconds=delay_seconds)
    done = _RESCHEDULE_SCRIPT(
        keys=[rq_edge.job_key(request_id), rq_edge.scheduled_key(queue.name), rq_edge.QUEUES],
        args=[request_id, worker, calendar.timegm(at.utctimetuple()), queue.key, "1" if claimed else "0"],
        client=queue.connection,
    )
    if done == -1:
        return ensure_queued(queue, request_id, at=at)
    return bool(done == 1)


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
            pipe.hmget(
                rq_edge.job_key(request_id), JobField.STATUS, JobField.WORKER_NAME, JobField.STARTED_AT
            )
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


def stranded_in_transit(queue: Queue, request_ids: list[str]) -> set[str]:
    """Of these jobs, those in RQ's intermediate list and not in the queue: taken by a dequeue
    whose worker never ran them (its connection broke as the reply came: a failover)."""
    with queue.connection.pipeline(transaction=False) as pipe:
        for request_id in request_ids:
            pipe.lpos(queue.key, request_id)
            pipe.lpos(rq_edge.intermediate_key(queue.name), request_id)
        replies = pipe.execute()
    places = zip(replies[0::2], replies[1::2], strict=True)
    return {
        rid
        for rid, (queued, taken) in zip(request_ids, places, strict=True)
        if queued is None and taken is not None
    }


def leave_transit(queue: Queue, request_id: str, copies: int = 0) -> None:
    """Takes a job out of RQ's intermediate list (RQ would fail it there after a minute or two):
    every copy of its id, or the first ``copies`` (a worker giving back its own take: one)."""
    queue.connection.lrem(rq_edge.intermediate_key(queue.name), copies, request_id)


def is_waiting(queue: Queue, request_id: str) -> bool:
    """Whether the delivery's job id is in the queue itself (LPOS: a scan, for the rare check of
    a job a worker may have dropped)."""
    return queue.connection.lpos(queue.key, request_id) is not None


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
        queue.connection.delete(rq_edge.job_key(request_id))


SCHEDULER_STALE_SECONDS = 10
"""RQ's scheduler beats about once a second; one silent this long is taken for dead."""
STAND_IN_CHUNK = 500


def stand_in_for_scheduler(queue: Queue) -> int | None:
    """Moves the scheduled jobs that are due to the queue when RQ's scheduler is not running:
    no process holds its lock, or the holder stopped beating (killed with its worker, its host
    cut off: RQ's lock outlives it by a minute, and a live worker tries to take the lock only
    every minute). Atomic per chunk, and a no-op while a scheduler beats. Returns None when a
    scheduler runs, else how many jobs it moved."""
    stale = utcformat(datetime.now(UTC) - timedelta(seconds=SCHEDULER_STALE_SECONDS))
    keys = [rq_edge.scheduler_lock_key(queue.name), rq_edge.scheduled_key(queue.name), queue.key]
    moved = 0
    while True:
        result: int = _STAND_IN_SCRIPT(
            keys=keys,
            args=[
                calendar.timegm(datetime.now(UTC).utctimetuple()),
                rq_edge.JOB_PREFIX,
                utcformat(datetime.now(UTC)),
                STAND_IN_CHUNK,
                rq_edge.SCHEDULER_PREFIX,
                stale,
            ],
            client=queue.connection,
        )
        if result < 0:
            return None
        moved += result
        if result < STAND_IN_CHUNK:
            return moved


def move_overdue_to_queue(queue: Queue, request_id: str) -> bool:
    """Enqueues a scheduled job now (used when the scheduler is late); False if it was not scheduled."""
    stamp = utcformat(datetime.now(UTC))
    moved = _WAKE_SCRIPT(
        keys=[rq_edge.job_key(request_id), rq_edge.scheduled_key(queue.name), queue.key],
        args=[request_id, stamp],
        client=queue.connection,
    )
    return bool(moved)
