"""The queue's numbers and RQ's workers, read-only (dispatcher.queue.snapshot), on the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue, Worker
from rq.utils import utcformat
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from dispatcher import queue as queue_room
from dispatcher.queue import rq_edge
from dispatcher.queue.jobs import enqueue_new, schedule_new


def make_queue(redis_client) -> Queue:
    return Queue("send-webhook-request", connection=redis_client, default_timeout=180)


def test_the_snapshot_counts_without_changing_anything(redis_client) -> None:
    q = make_queue(redis_client)
    enqueue_new(q, ["r-1", "r-2", "r-3"])
    snapshot = queue_room.queue_snapshot(q)
    assert (
        snapshot["queued"] == 3 and snapshot["scheduled"] == 0 and snapshot["oldest_queued_age_seconds"] >= 0
    )
    assert q.job_ids == ["r-1", "r-2", "r-3"]


def test_an_empty_queue_has_no_oldest_age(redis_client) -> None:
    q = make_queue(redis_client)
    schedule_new(q, ["later"], timedelta(hours=1))
    snapshot = queue_room.queue_snapshot(q)
    assert (snapshot["queued"], snapshot["scheduled"], snapshot["oldest_queued_age_seconds"]) == (0, 1, None)


def test_the_oldest_age_skips_head_ids_whose_record_is_gone(redis_client) -> None:
    q = make_queue(redis_client)
    now = datetime.now(UTC)
    enqueue_new(q, ["gone", "head"])
    redis_client.delete(rq_edge.job_key("gone"))  # RQ drops such an id when it dequeues it
    redis_client.hset(
        rq_edge.job_key("head"), rq_edge.JobField.ENQUEUED_AT, utcformat(now - timedelta(seconds=42))
    )
    assert queue_room.oldest_queued_age(q, now) == 42.0


def test_worker_records_list_rqs_workers_and_those_its_sets_lost(redis_client) -> None:
    """A flush under running workers empties RQ's sets of workers; each worker's heartbeat writes
    its record again, but RQ adds a worker to its sets only at birth."""
    q = make_queue(redis_client)
    kept, lost = (Worker([q], connection=redis_client, name=name) for name in ("kept", "lost"))
    kept.register_birth()
    lost.register_birth()
    redis_client.srem(Worker.redis_workers_keys, lost.key)
    redis_client.srem(WORKERS_BY_QUEUE_KEY % q.name, lost.key)
    assert sorted(queue_room.worker_records(q)) == ["kept"]
    records = queue_room.worker_records(q, also={"lost", "nobody"})
    assert sorted(records) == ["kept", "lost"]
    assert (records["lost"]["hostname"], records["lost"]["pid"]) == (lost.hostname, lost.pid)
    assert tuple(records["lost"]) == ("name", *queue_room.WORKER_COLUMNS)
