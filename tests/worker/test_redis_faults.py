"""What a worker does when Redis fails around a job: a job it took and then lost track of is
queued again as its delivery says, and a failing urgent reconcile waits a beat between tries."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa

from dispatcher import dispatch, queue
from dispatcher.contract import catalogue
from dispatcher.store.schema import DELIVERIES
from dispatcher.vocabulary import DeliveryStatus, JobState
from dispatcher.worker import housekeeping as housekeeping_module
from dispatcher.worker import reconcile

ENDPOINT = {"name": "partner-a", "url": "http://127.0.0.1:9/hook", "key": "k-123456"}


def taken_and_dropped(runtime) -> str:
    """A dispatched delivery whose job a worker moved to RQ's intermediate list (as its dequeue
    does) and then never ran: Redis failed before the worker marked it started."""
    (request_id,) = dispatch("order_changed", catalogue.CATALOGUE["order_changed"].example())
    moved = runtime.redis.lmove(runtime.queue.key, runtime.queue.intermediate_queue.key)
    assert moved.decode() == request_id and request_id not in runtime.queue.job_ids
    return request_id


def set_row(runtime, request_id: str, **values) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(sa.update(DELIVERIES).where(DELIVERIES.c.request_id == request_id).values(**values))


def test_a_dropped_job_of_a_queued_delivery_is_queued_again_at_once(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = taken_and_dropped(runtime)
    assert reconcile.requeue_dropped(runtime, [request_id]) == [request_id]
    assert runtime.queue.job_ids == [request_id]
    assert runtime.queue.intermediate_queue.get_job_ids() == []
    assert reconcile.requeue_dropped(runtime, [request_id]) == []  # unique: still one job
    assert runtime.queue.job_ids == [request_id]


def test_a_dropped_job_of_a_delivery_waiting_for_its_retry_is_scheduled_for_it(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = taken_and_dropped(runtime)
    later = datetime.now(UTC) + timedelta(minutes=5)
    set_row(runtime, request_id, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=later)
    assert reconcile.requeue_dropped(runtime, [request_id]) == [request_id]
    assert runtime.queue.job_ids == []
    assert queue.job_state(runtime.queue, request_id)[0] == JobState.SCHEDULED


def test_a_dropped_job_of_a_final_or_claimed_delivery_is_not_queued_again(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    delivered, claimed = taken_and_dropped(runtime), taken_and_dropped(runtime)
    set_row(runtime, delivered, status=DeliveryStatus.DELIVERED, attempts=1)
    set_row(runtime, claimed, status=DeliveryStatus.IN_FLIGHT, worker="another-worker")
    assert reconcile.requeue_dropped(runtime, [delivered, claimed]) == []
    assert runtime.queue.job_ids == [] and runtime.queue.intermediate_queue.get_job_ids() == []


def test_an_urgent_reconcile_that_fails_tries_again_at_the_next_beat_not_at_once(
    make_runtime, monkeypatch
) -> None:
    runtime = make_runtime(endpoints=[])
    monkeypatch.setattr(housekeeping_module, "HEARTBEAT_SECONDS", 0.2)
    calls = []

    def failing(*_args):
        calls.append(time.monotonic())
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(reconcile, "reconcile_now", failing)
    housekeeping = housekeeping_module.Housekeeping(runtime, reconcile_every=3600)
    housekeeping.urgency.raise_("redis answering again")
    housekeeping.start()
    try:
        time.sleep(1.0)
    finally:
        housekeeping.stop()
    assert 2 <= len(calls) <= 8, f"{len(calls)} tries in 1 s (one a beat of 0.2 s expected)"
    assert threading.active_count() >= 1


def test_reconcile_queues_again_a_job_left_in_rqs_intermediate_list(make_runtime) -> None:
    """A dequeue whose reply never reached its worker (the primary died as it answered) leaves
    the job in RQ's intermediate list with its record saying queued: reconcile takes it out and
    queues it again, instead of waiting for RQ's cleanup."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = taken_and_dropped(runtime)
    set_row(runtime, request_id, updated_at=datetime.now(UTC) - timedelta(seconds=10))
    report = reconcile.reconcile(runtime)
    assert report.requeued == [request_id]
    assert runtime.queue.job_ids == [request_id]
    assert runtime.queue.intermediate_queue.get_job_ids() == []
    assert reconcile.reconcile(runtime).requeued == []  # waiting in the queue now: left alone


def test_jobs_a_take_marked_started_but_whose_reply_was_lost_are_queued_again(make_runtime) -> None:
    """A batch's take pops jobs and marks them started by its worker in one script; when the
    connection breaks as the reply comes back (every connection reset at once), the worker never
    learns which. Nobody runs them, and reconcile leaves a live worker's started jobs alone for
    minutes. The worker, between jobs, queues again every claimable delivery whose job says it
    is its own and that it does not hold."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    example = catalogue.CATALOGUE["order_changed"].example()
    lost, retrying, held, elsewhere = (dispatch("order_changed", example)[0] for _ in range(4))
    assert sorted(queue.take(runtime.queue, runtime.worker_name, 3)) == sorted([lost, retrying, held])
    assert queue.take(runtime.queue, "another-worker", 1) == [elsewhere]  # a live worker's own
    later = datetime.now(UTC) + timedelta(minutes=5)
    set_row(runtime, retrying, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=later)
    runtime.hold([held])  # a batch of this worker has it

    assert sorted(reconcile.requeue_lost_takes(runtime)) == sorted([lost, retrying])
    assert runtime.queue.job_ids == [lost]
    assert queue.job_state(runtime.queue, retrying)[0] == JobState.SCHEDULED  # at its next attempt
    assert queue.job_state(runtime.queue, held) == (JobState.STARTED, runtime.worker_name)
    assert queue.job_state(runtime.queue, elsewhere) == (JobState.STARTED, "another-worker")
    assert reconcile.requeue_lost_takes(runtime) == []  # once


def test_a_take_that_fails_with_redis_marks_the_worker_to_look_for_lost_takes(make_runtime, monkeypatch):
    from dispatcher.worker.batch import Batch

    runtime = make_runtime(endpoints=[ENDPOINT])

    def reset(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(queue, "take", reset)
    batch = Batch(runtime)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            batch.take([])
    finally:
        batch.close()
    assert runtime.take_lost is True
