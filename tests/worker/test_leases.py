"""A worker's lease in the database, and reconcile and the registry respecting it (issue 21, #10):
on the real Redis and SQLite. A worker is gone only when its liveness key and its lease both are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import OperationalError

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.store import leases
from dispatcher.vocabulary import AttemptOutcome, DeliveryStatus
from dispatcher.worker import housekeeping as housekeeping_module
from dispatcher.worker import liveness, reconcile
from dispatcher.worker.housekeeping import WORKERS_GONE, Housekeeping, Lease

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
