"""Reconcile's I/O (dispatcher.worker.reconcile), on the real Redis and SQLite: what it repairs,
what it leaves alone, and its locks. Its verdicts alone are tested in tests/policy/test_reconcile.py;
the faults around Redis (dropped jobs, lost takes, jobs left in transit) in
tests/worker/test_redis_faults.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from dispatcher import dispatch, queue, store
from dispatcher.contract import catalogue
from dispatcher.store import leases
from dispatcher.store.schema import DELIVERIES
from dispatcher.vocabulary import DeliveryStatus, JobState
from dispatcher.worker import liveness, reconcile

ENDPOINT = {"name": "partner-a", "url": "http://127.0.0.1:9/hook", "key": "k-123456"}
LATER = timedelta(minutes=2)
"""How far ahead a test's reconcile looks: past every grace (orphan, abandon, overdue)."""


def dispatched(runtime) -> str:
    (request_id,) = dispatch("order_changed", catalogue.CATALOGUE["order_changed"].example())
    return request_id


def set_row(runtime, request_id: str, **values) -> None:
    with runtime.engine.begin() as conn:
        conn.execute(sa.update(DELIVERIES).where(DELIVERIES.c.request_id == request_id).values(**values))


def claimed_by(runtime, request_id: str, worker: str, at: datetime) -> None:
    set_row(
        runtime, request_id, status=DeliveryStatus.IN_FLIGHT, worker=worker, attempts=1, attempt_started_at=at
    )


def ahead() -> datetime:
    return datetime.now(UTC) + LATER


def test_a_queued_delivery_whose_job_redis_lost_gets_one_job_again(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = dispatched(runtime)
    redis_client.flushdb()
    report = reconcile.reconcile(runtime, now=ahead())
    assert report.requeued == [request_id] and report.checked == 1
    assert runtime.queue.job_ids == [request_id]
    assert reconcile.reconcile(runtime, now=ahead()).requeued == []  # its job is there now


def test_a_retrying_delivery_whose_job_redis_lost_is_scheduled_at_its_next_attempt(
    make_runtime, redis_client
) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = dispatched(runtime)
    due = datetime.now(UTC) + timedelta(hours=1)
    set_row(runtime, request_id, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=due)
    redis_client.flushdb()
    assert reconcile.reconcile(runtime, now=ahead()).requeued == [request_id]
    assert runtime.queue.job_ids == []
    assert queue.job_state(runtime.queue, request_id) == (JobState.SCHEDULED, None)


def test_a_young_delivery_is_left_to_its_dispatch(make_runtime, redis_client) -> None:
    """A row younger than the orphan grace is most likely a dispatch still on its way to Redis."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    dispatched(runtime)
    redis_client.flushdb()
    report = reconcile.reconcile(runtime)
    assert report.requeued == [] and report.checked == 0


def test_a_dead_workers_claim_is_recorded_interrupted_and_queued_again(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = dispatched(runtime)
    queue.take(runtime.queue, "gone-worker", 1)  # its job says started by the dead worker
    claimed_by(runtime, request_id, "gone-worker", datetime.now(UTC))
    report = reconcile.reconcile(runtime, now=ahead())
    assert report.abandoned == [request_id]
    delivery = store.get_delivery(runtime.engine, request_id)
    assert delivery is not None
    assert (delivery["status"], delivery["worker"]) == (DeliveryStatus.RETRYING, None)
    assert delivery["attempt_limit"] == 6  # the cut-short attempt goes back to the budget (5)
    assert runtime.queue.job_ids == [request_id]
    assert queue.job_state(runtime.queue, request_id) == (JobState.QUEUED, None)


@pytest.mark.parametrize("how", ["liveness key", "lease"])
def test_a_live_workers_claim_is_left_alone(make_runtime, how) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = dispatched(runtime)
    claimed_by(runtime, request_id, "live-worker", datetime.now(UTC))
    if how == "liveness key":
        liveness.mark_alive(runtime.redis, "live-worker")
    else:  # Redis lost its key: its lease in the database still runs
        leases.renew(runtime.engine, "live-worker", datetime.now(UTC), liveness.LEASE_TTL)
    assert reconcile.living(runtime, {"live-worker", None}) != (set(), set())
    report = reconcile.reconcile(runtime, now=ahead())
    assert report.abandoned == []
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.IN_FLIGHT


def test_an_overdue_scheduled_retry_is_moved_to_the_queue(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = dispatched(runtime)
    past = datetime.now(UTC) - timedelta(minutes=5)
    set_row(runtime, request_id, status=DeliveryStatus.RETRYING, attempts=1, next_attempt_at=past)
    queue.remove_job(runtime.queue, request_id)
    assert queue.ensure_queued(runtime.queue, request_id, at=past)  # RQ's scheduler never moved it
    report = reconcile.reconcile(runtime, now=ahead())
    assert report.overdue == [request_id] and report.requeued == []
    assert runtime.queue.job_ids == [request_id]


def test_own_claims_no_job_holds_are_recovered_and_held_ones_kept(make_runtime) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    cut_short, held = dispatched(runtime), dispatched(runtime)
    long_ago = datetime.now(UTC) - reconcile.OWN_CLAIM_GRACE - timedelta(seconds=5)
    for request_id in (cut_short, held):
        queue.take(runtime.queue, runtime.worker_name, 1)
        claimed_by(runtime, request_id, runtime.worker_name, long_ago)
    runtime.hold([held])
    assert reconcile.recover_own_claims(runtime).abandoned == [cut_short]
    assert store.get_delivery(runtime.engine, held)["status"] == DeliveryStatus.IN_FLIGHT
    assert runtime.queue.job_ids == [cut_short]


def test_a_dropped_take_gives_back_its_own_copy_in_transit_only(make_runtime, redis_client) -> None:
    """RQ's dequeue moved the id to its intermediate list; another worker's dequeue of a second
    copy (a scheduler and a mover racing) is there too, and is that worker's to give back."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = dispatched(runtime)
    in_transit = runtime.queue.intermediate_queue_key
    redis_client.lmove(runtime.queue.key, in_transit)
    redis_client.rpush(in_transit, request_id)
    assert reconcile.requeue_dropped(runtime, [request_id]) == [request_id]
    assert redis_client.lrange(in_transit, 0, -1) == [request_id.encode()]
    assert runtime.queue.job_ids == [request_id]


def test_the_routine_pass_runs_once_a_period_across_workers(make_runtime) -> None:
    runtime = make_runtime(endpoints=[])
    assert reconcile.reconcile_if_due(runtime, "worker-1", every_seconds=60) is not None
    assert reconcile.reconcile_if_due(runtime, "worker-2", every_seconds=60) is None
    assert runtime.redis.ttl(reconcile.LOCK_KEY) > 0


def test_an_urgent_pass_releases_its_lock_and_forgets_the_dead(make_runtime) -> None:
    runtime = make_runtime(endpoints=[])
    liveness.beat(runtime.redis, "gone-worker")
    runtime.redis.delete(liveness.alive_key("gone-worker"))
    leases.renew(runtime.engine, "gone-worker", datetime.now(UTC) - timedelta(hours=1), liveness.LEASE_TTL)
    assert reconcile.reconcile_now(runtime, "worker-1", ["gone-worker"]) is not None
    assert not runtime.redis.exists(reconcile.NOW_LOCK_KEY)
    assert "gone-worker" not in liveness.registered(runtime.redis)
    assert leases.expired(runtime.engine, datetime.now(UTC), other_than="worker-1") == []


def test_a_failed_pass_leaves_no_lock_behind(make_runtime, monkeypatch) -> None:
    runtime = make_runtime(endpoints=[])

    def failing(*_args, **_kwargs):
        raise ConnectionError("Redis is away")

    monkeypatch.setattr(reconcile, "reconcile", failing)
    with pytest.raises(ConnectionError):
        reconcile.reconcile_if_due(runtime, "worker-1")
    assert not runtime.redis.exists(reconcile.LOCK_KEY)  # the next worker may try at once
