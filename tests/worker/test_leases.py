"""A worker's lease in the database, and reconcile and the registry respecting it (issue 21, #10):
on the real Redis and SQLite. A worker is gone only when its liveness key and its lease both are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.store import leases
from dispatcher.store.schema import WORKER_LEASES
from dispatcher.vocabulary import AttemptOutcome, DeliveryStatus
from dispatcher.worker import housekeeping as housekeeping_module
from dispatcher.worker import liveness, reconcile
from dispatcher.worker.housekeeping import WORKERS_GONE, Housekeeping, Lease, Urgency

ENDPOINT = {"name": "pharmacy", "url": "http://127.0.0.1:9/hook", "key": "pharmacy-key-1"}
LONG_AGO = timedelta(minutes=5)
"""reconcile is told it is this much later, so every claim is past its grace."""


def claimed_by(runtime, worker: str) -> str:
    (request_id,) = dispatch("message_created", events.CATALOGUE["message_created"].example())
    assert store.claim(runtime.engine, request_id, worker) is not None
    return request_id


def outcomes(runtime, request_id: str) -> list[str]:
    return [a["outcome"] for a in store.list_attempts(runtime.engine, request_id)]


def test_reconcile_leaves_the_claim_of_a_worker_whose_lease_runs_whatever_redis_lost(
    make_runtime, redis_client
) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    live, dead = claimed_by(runtime, "leased"), claimed_by(runtime, "gone")
    now = datetime.now(UTC)
    leases.renew(runtime.engine, "leased", now, liveness.LEASE_TTL)
    leases.renew(runtime.engine, "gone", now - timedelta(minutes=2), liveness.LEASE_TTL)  # expired
    redis_client.flushdb()  # no liveness key for anyone

    report = reconcile.reconcile(runtime, now=now + LONG_AGO)

    assert report.abandoned == [dead]
    assert store.get_delivery(runtime.engine, live)["status"] == DeliveryStatus.IN_FLIGHT
    assert outcomes(runtime, live) == []
    assert outcomes(runtime, dead) == [AttemptOutcome.INTERRUPTED]


def test_a_claim_whose_worker_has_a_key_but_no_lease_is_alive_too(make_runtime, redis_client) -> None:
    """The database failed to renew the lease: the liveness key in Redis still counts."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = claimed_by(runtime, "keyed")
    liveness.mark_alive(redis_client, "keyed")
    assert reconcile.reconcile(runtime, now=datetime.now(UTC) + LONG_AGO).abandoned == []
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.IN_FLIGHT


def test_living_asks_the_database_only_for_workers_redis_lacks(make_runtime, redis_client) -> None:
    runtime = make_runtime(endpoints=[])
    liveness.mark_alive(redis_client, "keyed")
    leases.renew(runtime.engine, "keyed", datetime.now(UTC), liveness.LEASE_TTL)
    leases.renew(runtime.engine, "leased", datetime.now(UTC), liveness.LEASE_TTL)
    assert reconcile.living(runtime, {"keyed", "leased", "gone", None}) == ({"keyed"}, {"leased"})


def test_a_worker_in_the_registry_without_a_key_but_with_a_lease_is_not_dead(
    make_runtime, redis_client, monkeypatch
) -> None:
    """The heartbeat reports workers whose key expired; housekeeping asks their leases first: a
    leased one causes no reconcile and stays in the registry; a gone one is reconciled and
    forgotten."""
    runtime = make_runtime(endpoints=[])
    runtime.worker_name = "me"
    leases.renew(runtime.engine, "partitioned", datetime.now(UTC), liveness.LEASE_TTL)
    for name in ("partitioned", "killed"):
        redis_client.zadd(liveness.REGISTRY_KEY, {name: 1})  # their last beat, long ago
    passes: list[str] = []
    monkeypatch.setattr(
        reconcile, "reconcile", lambda _rt: passes.append("pass") or reconcile.ReconcileReport()
    )
    housekeeping = Housekeeping(runtime)

    housekeeping.maybe_reconcile([WORKERS_GONE], {"partitioned"})
    assert passes == []
    assert redis_client.zscore(liveness.REGISTRY_KEY, "partitioned") is not None

    housekeeping.maybe_reconcile([WORKERS_GONE], {"partitioned", "killed"})
    assert passes == ["pass"]
    assert redis_client.zscore(liveness.REGISTRY_KEY, "killed") is None
    assert redis_client.zscore(liveness.REGISTRY_KEY, "partitioned") is not None


def test_the_lease_is_renewed_each_beat_and_a_database_error_is_logged_once(
    make_runtime, monkeypatch
) -> None:
    runtime = make_runtime(endpoints=[])
    runtime.worker_name = "renewer"
    lines: list[str] = []
    monkeypatch.setattr(housekeeping_module, "log_line", lambda _level, message, **_f: lines.append(message))
    lease = Lease(runtime)
    assert lease.renew()
    assert leases.live_workers(runtime.engine, ["renewer"], datetime.now(UTC)) == {"renewer"}

    renew = leases.renew

    def refused(*_args: object) -> None:
        raise OperationalError("INSERT INTO webhook_worker_leases", {}, Exception("database is locked"))

    monkeypatch.setattr(leases, "renew", refused)
    assert not lease.renew() and not lease.renew()
    assert lines == ["worker lease not renewed; its liveness key in redis still counts"]
    monkeypatch.setattr(leases, "renew", renew)
    assert lease.renew()
    assert lines[-1] == "worker lease renewed again"
    lease.release()
    assert leases.live_workers(runtime.engine, ["renewer"], datetime.now(UTC)) == set()


def test_a_job_started_by_a_worker_alive_by_its_lease_is_left_alone(make_runtime, redis_client) -> None:
    """An orphan's verdict asks the same question: a job marked started by a worker Redis lost
    the key of, but whose lease runs, is that worker's (it is running it)."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    sent_by = "leased"
    (request_id,) = dispatch("message_created", events.CATALOGUE["message_created"].example())
    redis_client.hset(f"rq:job:{request_id}", mapping={"status": "started", "worker_name": sent_by})
    leases.renew(runtime.engine, sent_by, datetime.now(UTC), liveness.LEASE_TTL)
    report = reconcile.reconcile(runtime, now=datetime.now(UTC) + LONG_AGO)
    assert report.requeued == []
    assert redis_client.hget(f"rq:job:{request_id}", "worker_name") == sent_by.encode()


# A worker killed while Redis lost the registry (issue 21, #10, the reviewer's follow-up): the
# lease thread of a live worker notices the expired lease, one worker reconciles at once, and the
# lease is deleted so it is reported once.


def claimed_long_ago(runtime, worker: str) -> str:
    """A claim past reconcile's grace, as a claim is by the time its worker's lease expired."""
    request_id = claimed_by(runtime, worker)
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(updated_at=datetime.now(UTC) - LONG_AGO)
        )
    return request_id


def lease_rows(runtime) -> set[str]:
    with runtime.engine.connect() as conn:
        return set(conn.execute(sa.select(WORKER_LEASES.c.worker)).scalars())


def surviving(runtime) -> tuple[Lease, Housekeeping]:
    runtime.worker_name = "survivor"
    urgency = Urgency()
    return Lease(runtime, urgency), Housekeeping(runtime, urgency=urgency)


def test_an_expired_lease_seen_by_the_lease_thread_has_the_claim_recovered_when_redis_lost_the_registry(
    make_runtime, redis_client
) -> None:
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = claimed_long_ago(runtime, "killed")
    leases.renew(runtime.engine, "killed", datetime.now(UTC) - timedelta(minutes=2), liveness.LEASE_TTL)
    leases.renew(runtime.engine, "stopped", datetime.now(UTC) - timedelta(minutes=2), liveness.LEASE_TTL)
    leases.release(runtime.engine, "stopped")  # a clean stop leaves no lease to report
    redis_client.flushdb()  # no liveness key, no registry: the heartbeat reports no one
    lease, housekeeping = surviving(runtime)

    lease.step()
    reasons, dead = lease.urgency.take()
    assert (reasons, dead) == ([WORKERS_GONE], {"killed"})
    housekeeping.maybe_reconcile(reasons, dead)

    assert outcomes(runtime, request_id) == [AttemptOutcome.INTERRUPTED]
    assert store.get_delivery(runtime.engine, request_id)["status"] != DeliveryStatus.IN_FLIGHT
    assert request_id in runtime.queue.get_job_ids()
    assert lease_rows(runtime) == {"survivor"}, "the dead worker's lease is deleted once recovered"
    lease.step()
    assert lease.urgency.take() == ([], set()), "a dead worker is reported once, not every beat"


def test_a_worker_alive_in_redis_whose_lease_expired_keeps_its_claim_and_gets_its_lease_back(
    make_runtime, redis_client
) -> None:
    """Its renewals failed (the database refusing it alone): its liveness key still counts."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = claimed_long_ago(runtime, "db-failing")
    leases.renew(runtime.engine, "db-failing", datetime.now(UTC) - timedelta(minutes=2), liveness.LEASE_TTL)
    liveness.mark_alive(redis_client, "db-failing")
    lease, housekeeping = surviving(runtime)

    lease.step()
    reasons, dead = lease.urgency.take()
    assert dead == {"db-failing"}
    housekeeping.maybe_reconcile(reasons, dead)

    assert outcomes(runtime, request_id) == []
    assert store.get_delivery(runtime.engine, request_id)["status"] == DeliveryStatus.IN_FLIGHT
    assert lease_rows(runtime) == {"survivor", "db-failing"}
    leases.renew(runtime.engine, "db-failing", datetime.now(UTC), liveness.LEASE_TTL)  # its next renewal
    assert leases.live_workers(runtime.engine, ["db-failing"], datetime.now(UTC)) == {"db-failing"}
    lease.step()
    assert lease.urgency.take() == ([], set())


def test_two_workers_seeing_one_expired_lease_recover_its_claim_once(make_runtime, redis_client) -> None:
    """Both lease threads report it; the urgent reconcile runs on one worker at a time: the one
    refused by the lock recovers and deletes nothing, and reports it again at its next beat only
    if the other has not dealt with it."""
    runtime = make_runtime(endpoints=[ENDPOINT])
    request_id = claimed_long_ago(runtime, "killed")
    leases.renew(runtime.engine, "killed", datetime.now(UTC) - timedelta(minutes=2), liveness.LEASE_TTL)
    lease, housekeeping = surviving(runtime)
    lease.step()
    redis_client.set(reconcile.NOW_LOCK_KEY, "other-worker", ex=60)  # the other one is reconciling

    housekeeping.maybe_reconcile(*lease.urgency.take())
    assert outcomes(runtime, request_id) == []
    assert "killed" in lease_rows(runtime), "a pass that did not run deletes no lease"

    redis_client.delete(reconcile.NOW_LOCK_KEY)
    lease.step()
    housekeeping.maybe_reconcile(*lease.urgency.take())
    housekeeping.maybe_reconcile([WORKERS_GONE], {"killed"})  # the other's report, arriving late
    assert outcomes(runtime, request_id) == [AttemptOutcome.INTERRUPTED]
    assert "killed" not in lease_rows(runtime)


def test_the_lease_thread_looks_for_expired_leases_only_after_renewing_and_logs_a_failure_once(
    make_runtime, monkeypatch
) -> None:
    runtime = make_runtime(endpoints=[])
    lines: list[str] = []
    monkeypatch.setattr(housekeeping_module, "log_line", lambda _level, message, **_f: lines.append(message))
    lease, _housekeeping = surviving(runtime)
    asked: list[str] = []

    def refused(*_args: object, **_kwargs: object) -> list[str]:
        asked.append("expired")
        raise OperationalError("SELECT webhook_worker_leases", {}, Exception("connection refused"))

    monkeypatch.setattr(leases, "expired", refused)
    lease.step()
    lease.step()
    assert lines == ["expired leases not read"] and len(asked) == 2

    def renew_refused(*_args: object) -> None:
        raise OperationalError("INSERT INTO webhook_worker_leases", {}, Exception("connection refused"))

    monkeypatch.setattr(leases, "renew", renew_refused)
    lease.step()
    assert len(asked) == 2, "no lease renewed, no question asked"
    assert lines[-1] == "worker lease not renewed; its liveness key in redis still counts"
    monkeypatch.undo()
    lease.step()
    assert lease.urgency.take() == ([], set())
