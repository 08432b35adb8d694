"""One RQ job per delivery (dispatcher.queue.jobs), on the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.job import Job, JobStatus
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE
from rq.utils import utcformat

from dispatcher import queue as queue_room
from dispatcher.queue.jobs import (
    JOB_FUNCTION,
    SCHEDULER_STALE_SECONDS,
    enqueue_new,
    ensure_queued,
    stand_in_for_scheduler,
)


def make_queue(redis_client) -> Queue:
    return Queue("send-webhook-request", connection=redis_client, default_timeout=180)


def test_enqueue_new_writes_a_job_rq_can_run(redis_client) -> None:
    q = make_queue(redis_client)
    assert enqueue_new(q, ["r-1", "r-2"]) == ["r-1", "r-2"]
    job = Job.fetch("r-1", connection=redis_client)
    assert (job.func_name, job.args, job.timeout, job.origin) == (JOB_FUNCTION, ("r-1",), 180, q.name)
    assert job.get_status() == JobStatus.QUEUED and job.enqueued_at is not None
    assert q.job_ids == ["r-1", "r-2"] and q in Queue.all(connection=redis_client)


def test_a_delivery_that_has_a_job_gets_no_second_one(redis_client) -> None:
    """A dispatch whose Redis write comes late, after reconcile already queued the delivery
    (or a retry is scheduled for it): one job, one queue entry."""
    q = make_queue(redis_client)
    assert ensure_queued(q, "r-1") is True  # reconcile first
    assert enqueue_new(q, ["r-1", "r-2"]) == ["r-2"]  # then the late dispatch
    assert q.job_ids == ["r-1", "r-2"]
    q.schedule_job(
        q.create_job(JOB_FUNCTION, args=("r-3",), job_id="r-3"),
        Job.fetch("r-1", connection=redis_client).enqueued_at,
    )
    assert enqueue_new(q, ["r-3"]) == []
    assert "r-3" not in q.job_ids


def test_the_snapshot_counts_without_changing_anything(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1", "r-2", "r-3"])
    snapshot = queue_room.queue_snapshot(q)
    assert (
        snapshot["queued"] == 3 and snapshot["scheduled"] == 0 and snapshot["oldest_queued_age_seconds"] >= 0
    )
    assert q.job_ids == ["r-1", "r-2", "r-3"]


def _scheduled(q: Queue, request_id: str, at: datetime) -> None:
    q.schedule_job(q.create_job(JOB_FUNCTION, args=(request_id,), job_id=request_id), at)


def test_the_stand_in_moves_due_jobs_only_while_no_scheduler_beats(redis_client) -> None:
    """RQ's scheduler (one process, under a lock) moves due retries to the queue. When its
    holder died, nothing did for up to a minute; the workers' stand-in does, and only then."""
    q = make_queue(redis_client)
    now = datetime.now(UTC)
    _scheduled(q, "due-1", now - timedelta(seconds=5))
    _scheduled(q, "due-2", now - timedelta(seconds=1))
    _scheduled(q, "later", now + timedelta(minutes=5))
    lock = SCHEDULER_LOCKING_KEY_TEMPLATE % q.name

    redis_client.set(lock, "alive-scheduler", ex=60)  # a scheduler beating: the stand-in keeps out
    redis_client.hset(SCHEDULER_KEY_TEMPLATE % "alive-scheduler", "last_heartbeat", utcformat(now))
    assert stand_in_for_scheduler(q) is None
    assert q.job_ids == [] and q.scheduled_job_registry.count == 3

    stale = now - timedelta(seconds=SCHEDULER_STALE_SECONDS + 5)  # its beats stopped: it died
    redis_client.hset(SCHEDULER_KEY_TEMPLATE % "alive-scheduler", "last_heartbeat", utcformat(stale))
    assert stand_in_for_scheduler(q) == 2
    assert q.job_ids == ["due-1", "due-2"] and q.scheduled_job_registry.get_job_ids() == ["later"]
    assert Job.fetch("due-1", connection=redis_client).get_status() == JobStatus.QUEUED
    assert stand_in_for_scheduler(q) == 0  # moved once: nothing is queued twice
    assert q.job_ids == ["due-1", "due-2"]


def test_the_stand_in_moves_when_no_scheduler_holds_the_lock_and_drops_missing_jobs(redis_client) -> None:
    q = make_queue(redis_client)
    _scheduled(q, "due", datetime.now(UTC) - timedelta(seconds=2))
    redis_client.zadd(q.scheduled_job_registry.key, {"gone": 1})  # its job record expired
    assert stand_in_for_scheduler(q) == 1
    assert q.job_ids == ["due"] and q.scheduled_job_registry.count == 0
