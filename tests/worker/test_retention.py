"""Retention (dispatcher.worker.retention), against the real SQLite and PostgreSQL and the real
Redis: a plan counts without writing, a run deletes the final deliveries past ``rows_days``,
erases the PHI of those past ``payload_days`` and the idempotency keys past their TTL, never
touches a delivery still to be sent, and the workers apply it once an hour, one at a time, due
again at once when a run fails. (Through the CLI, and the worker's round with dispatch, in
tests/ops/test_phi_lifecycle.py and tests/worker/test_idempotency_expiry.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.errors import StoreUnavailable
from dispatcher.store import audit, idempotency
from dispatcher.store.sealing import Keyring
from dispatcher.times import utcnow
from dispatcher.worker import retention
from tests.store.rows import attempt_record, new_delivery

NOW = utcnow()


def final(engine, days_ago: float, outcome: str = "delivered") -> str:
    row = new_delivery(event="message_created")
    when = NOW - timedelta(days=days_ago)
    store.insert_deliveries(engine, [row], now=when)
    claim = store.claim(engine, row.request_id, "w1", now=when)
    http_status = 200 if outcome == "delivered" else 404
    store.record_attempt(
        engine, attempt_record(claim, outcome, http_status=http_status, created_at=when), "w1"
    )
    return row.request_id


def pending(engine, days_ago: float) -> str:
    row = new_delivery()
    store.insert_deliveries(engine, [row], now=NOW - timedelta(days=days_ago))
    return row.request_id


def key(engine, given: str, hours_ago: float) -> None:
    keyring = Keyring(())
    stored = idempotency.IdempotencyKey(
        given, tuple(keyring.candidates(given)), tuple(keyring.candidates("data")), "order_changed"
    )
    with engine.begin() as conn:
        idempotency.claim(conn, [stored], [[f"id-{given}"]], NOW - timedelta(hours=hours_ago), 86400)


def snapshot(engine) -> list[list[tuple]]:
    with engine.connect() as conn:
        return [
            sorted(conn.execute(sa.select(table)).all(), key=repr) for table in store.METADATA.sorted_tables
        ]


@pytest.fixture
def engine(database_url: str):
    engine = store.create_store_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine) -> dict[str, str]:
    """A log of every age: old final deliveries, newer ones, an old one still to be sent, and keys."""
    ids = {
        "ancient": final(engine, 100),
        "ancient failed": final(engine, 95, "failed"),
        "old": final(engine, 45),
        "recent": final(engine, 1),
        "old pending": pending(engine, 200),
    }
    key(engine, "expired", 30)
    key(engine, "live", 1)
    return ids


def test_a_plan_counts_what_a_run_would_do_and_writes_nothing(engine, log) -> None:
    before = snapshot(engine)
    report = retention.plan(engine, 30, 90, NOW, idempotency_ttl=86400)
    assert (report.payload_cutoff, report.rows_cutoff) == (NOW - timedelta(days=30), NOW - timedelta(days=90))
    assert report.idempotency_keys_cutoff == NOW - timedelta(days=1)
    assert (report.to_delete, report.to_erase, report.idempotency_keys_to_delete) == (2, 3, 1)
    assert report.dry_run and (report.deleted, report.erased, report.idempotency_keys_deleted) == (0, 0, 0)
    assert retention.apply(engine, 30, 90, now=NOW, dry_run=True, idempotency_ttl=86400) == report
    assert snapshot(engine) == before


def test_a_run_deletes_old_rows_erases_old_payloads_and_expired_keys(engine, log) -> None:
    handled: list[int] = []
    report = retention.apply(engine, 30, 90, now=NOW, idempotency_ttl=86400, progress=handled.append)
    assert report.finished and not report.dry_run
    assert (report.deleted, report.attempts_deleted) == (2, 2)
    assert (report.erased, report.attempts_erased) == (1, 1)
    assert report.idempotency_keys_deleted == 1 and idempotency.count_expired(engine, NOW) == 1
    assert sum(handled) == 3
    kept = store.existing_deliveries(engine, list(log.values()))
    assert kept == {log["old"], log["recent"], log["old pending"]}
    old, recent = store.get_delivery(engine, log["old"]), store.get_delivery(engine, log["recent"])
    assert old["payload"] is None and old["payload_erased_at"] is not None and old["status"] == "delivered"
    assert recent["payload"] is not None
    assert store.get_delivery(engine, log["old pending"])["payload"] is not None  # never touched
    again = retention.apply(engine, 30, 90, now=NOW, idempotency_ttl=86400)
    assert (again.deleted, again.erased, again.idempotency_keys_deleted) == (0, 0, 0)


def test_without_rules_nothing_is_looked_at(engine, log) -> None:
    before = snapshot(engine)
    report = retention.apply(engine, None, None, now=NOW)
    assert (report.payload_cutoff, report.rows_cutoff, report.idempotency_keys_cutoff) == (None, None, None)
    assert report.counts() == dict.fromkeys(report.counts(), 0) and report.finished
    assert snapshot(engine) == before


def test_a_report_as_json_as_audit_counts_and_rules(engine, log) -> None:
    report = retention.apply(engine, 30, None, now=NOW)
    document = report.as_dict()
    assert list(document)[:5] == ["payload_days", "rows_days", "payload_cutoff", "rows_cutoff", "dry_run"]
    assert document["erased"] == 3 and document["finished"] is True
    assert report.counts() == {
        "payload_days": 30,
        "to_delete": 0,
        "to_erase": 3,
        "deleted": 0,
        "attempts_deleted": 0,
        "erased": 3,
        "attempts_erased": 3,
        "idempotency_keys_to_delete": 0,
        "idempotency_keys_deleted": 0,
    }  # numbers only: no flag, no moment, no None
    assert report.rules() == {"payload_days": 30, "rows_days": None}


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(
        database_url=database_url, retention={"payload_days": 30, "rows_days": 90}, idempotency_ttl=86400
    )


def test_one_worker_an_hour_applies_it_and_audits_what_it_did(runtime, redis_client) -> None:
    ids = [final(runtime.engine, 45), final(runtime.engine, 120)]
    report = retention.apply_if_due(runtime)
    assert report is not None and (report.erased, report.deleted) == (1, 1)
    assert redis_client.get(retention.DUE_KEY) == runtime.worker_name.encode()
    assert 3500 < redis_client.ttl(retention.DUE_KEY) <= retention.EVERY_SECONDS
    assert retention.apply_if_due(runtime) is None
    (entry,) = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.selection) == (
        f"worker {runtime.worker_name}",
        "retention run",
        {"payload_days": 30, "rows_days": 90},
    )
    assert (entry.counts["erased"], entry.counts["deleted"]) == (1, 1)
    assert store.existing_deliveries(runtime.engine, ids) == {ids[0]}


def test_a_run_that_deletes_only_expired_keys_writes_no_audit_row(runtime, redis_client) -> None:
    key(runtime.engine, "expired", 30)
    report = retention.apply_if_due(runtime)
    assert report.idempotency_keys_deleted == 1 and audit.entries(runtime.engine) == []


def test_a_failed_run_is_due_again_at_once(make_runtime, redis_client) -> None:
    runtime = make_runtime(database_url="postgresql+psycopg://postgres@127.0.0.1:1/away")
    with pytest.raises(StoreUnavailable, match="is unavailable"):
        retention.apply_if_due(runtime)  # the database away
    assert redis_client.exists(retention.DUE_KEY) == 0
