"""One RQ job per delivery (dispatcher.queue.jobs), on the real Redis."""

from __future__ import annotations

from rq import Queue
from rq.job import Job, JobStatus

from dispatcher import queue as queue_room
from dispatcher.queue.jobs import JOB_FUNCTION, enqueue_new, ensure_queued


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
