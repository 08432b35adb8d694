"""One RQ job per delivery (dispatcher.queue.jobs), on the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue
from rq.job import Job, JobStatus
from rq.scheduler import SCHEDULER_KEY_TEMPLATE, SCHEDULER_LOCKING_KEY_TEMPLATE
from rq.utils import utcformat

from dispatcher.queue.jobs import (
    JOB_FUNCTION,
    SCHEDULER_STALE_SECONDS,
    enqueue_new,
    ensure_queued,
    schedule_taken,
    stand_in_for_scheduler,
    take,
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


def test_a_second_copy_of_a_job_taken_by_another_worker_keeps_that_workers_schedule(redis_client) -> None:
    """RQ's scheduler and a mover racing can queue one job twice. Worker A takes the first copy
    and finds its delivery waiting behind its ordering key's head; the head finishes, worker B
    takes the second copy, sends it and schedules its retry in a second. A, settling after B,
    must neither push that retry back to its own 30 s wait nor drop B's job record."""
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1"])
    redis_client.rpush(q.key, "r-1")  # the second copy
    assert take(q, "worker-a", 1) == ["r-1"]
    assert take(q, "worker-b", 1) == ["r-1"]
    assert schedule_taken(q, "r-1", "worker-b", 1, claimed=True) is True  # B's retry, in a second
    due = redis_client.zscore(q.scheduled_job_registry.key, "r-1")

    assert schedule_taken(q, "r-1", "worker-a", 30, claimed=False) is False  # A's wait leaves it
    assert redis_client.zscore(q.scheduled_job_registry.key, "r-1") == due
    take(q, "worker-a", 0, finished=["r-1"])  # nor does A, finishing its copy, drop B's record
    assert Job.fetch("r-1", connection=redis_client).get_status() == JobStatus.SCHEDULED


def test_a_taken_job_whose_record_is_gone_is_scheduled_anew(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1"])
    assert take(q, "worker-a", 1) == ["r-1"]
    redis_client.delete(Job.key_for("r-1"))  # Redis lost it meanwhile
    assert schedule_taken(q, "r-1", "worker-a", 5, claimed=True) is True
    assert q.scheduled_job_registry.get_job_ids() == ["r-1"]
    assert Job.fetch("r-1", connection=redis_client).func_name == JOB_FUNCTION


def test_a_taken_job_is_scheduled_and_its_finished_record_dropped_by_its_worker(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1", "r-2"])
    assert take(q, "worker-a", 2) == ["r-1", "r-2"]
    assert schedule_taken(q, "r-1", "worker-a", 5, claimed=False) is True  # still its own
    assert Job.fetch("r-1", connection=redis_client).get_status() == JobStatus.SCHEDULED
    assert q.scheduled_job_registry.get_job_ids() == ["r-1"] and q in Queue.all(connection=redis_client)
    take(q, "worker-a", 0, finished=["r-2"])
    assert not redis_client.exists(Job.key_for("r-2"))


def test_the_worker_that_claimed_a_delivery_schedules_its_retry_whoever_took_a_second_copy(
    redis_client,
) -> None:
    """The other order: A claimed and sent the delivery; B took the second copy, found the
    delivery in A's hands and is done with it. A's retry stands, and B, dropping the records of
    what it finished, leaves A's job in place."""
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1"])
    redis_client.rpush(q.key, "r-1")
    assert take(q, "worker-a", 1) == ["r-1"]
    assert take(q, "worker-b", 1) == ["r-1"]
    assert schedule_taken(q, "r-1", "worker-a", 1, claimed=True) is True
    take(q, "worker-b", 0, finished=["r-1"])
    assert Job.fetch("r-1", connection=redis_client).get_status() == JobStatus.SCHEDULED
    assert q.scheduled_job_registry.get_job_ids() == ["r-1"]
