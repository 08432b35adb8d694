"""The delivery hot path (dispatcher.store.deliveries) on both backends (SQLite and the real
PostgreSQL): insert, claims, the retry budget, and several SQLite writer processes at once."""

from __future__ import annotations

import multiprocessing
import queue
import traceback
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.times import utcnow
from dispatcher.vocabulary import DeliveryStatus
from tests.store.rows import T0, attempt_count, attempt_record, claimed, new_delivery

# --- insert / get ----------------------------------------------------------------------------


def test_insert_then_get_round_trips(engine) -> None:
    row = store.NewDelivery(
        request_id=str(uuid.uuid4()),
        event="prescription_submitted",
        endpoint="partner-b",
        url="https://partner.example.com/hook",
        payload='{"event":"prescription_submitted","note":"ünïcödé"}',
        attempt_limit=8,
        replay_of="5e0c5bb4-6a6d-4c7b-9a0c-000000000000",
    )
    store.insert_deliveries(engine, [row], now=T0)

    got = store.get_delivery(engine, row.request_id)
    assert got is not None
    assert got["request_id"] == row.request_id
    assert got["event"] == "prescription_submitted"
    assert got["endpoint"] == "partner-b"
    assert got["url"] == "https://partner.example.com/hook"
    assert got["payload"] == row.payload
    assert got["attempt_limit"] == 8
    assert got["replay_of"] == row.replay_of
    assert got["status"] == DeliveryStatus.QUEUED
    assert got["attempts"] == 0
    assert got["last_http_status"] is None
    assert got["worker"] is None
    assert got["reason"] is None
    assert got["created_at"] == T0
    assert got["updated_at"] == T0
    assert store.get_delivery(engine, str(uuid.uuid4())) is None
    missing = str(uuid.uuid4())
    assert store.existing_deliveries(engine, [row.request_id, missing]) == {row.request_id}


def test_insert_nothing_is_a_no_op(engine) -> None:
    store.insert_deliveries(engine, [])
    assert store.list_deliveries(engine) == []


# --- claim -----------------------------------------------------------------------------------


def test_claim_moves_queued_to_in_flight_once(engine) -> None:
    row = new_delivery(attempt_limit=7)
    store.insert_deliveries(engine, [row], now=T0)
    later = T0 + timedelta(seconds=5)

    claim = store.claim(engine, row.request_id, "worker-1", now=later)
    assert claim == store.Claim(
        request_id=row.request_id,
        event=row.event,
        endpoint=row.endpoint,
        url=row.url,
        payload=row.payload,
        attempt=1,
        attempt_limit=7,
        dispatched_at=T0,
    )
    got = store.get_delivery(engine, row.request_id)
    assert got["status"] == DeliveryStatus.IN_FLIGHT
    assert got["attempts"] == 1
    assert got["worker"] == "worker-1"
    assert got["attempt_started_at"] == later
    assert got["updated_at"] == later

    # No double claim: neither another worker nor the same one.
    assert store.claim(engine, row.request_id, "worker-2") is None
    assert store.claim(engine, row.request_id, "worker-1") is None
    got = store.get_delivery(engine, row.request_id)
    assert got["attempts"] == 1
    assert got["worker"] == "worker-1"


def test_claim_of_unknown_request_id_returns_none(engine) -> None:
    assert store.claim(engine, str(uuid.uuid4()), "w1") is None


@pytest.mark.parametrize("outcome", ["delivered", "failed"])
def test_claim_of_a_finished_delivery_returns_none(engine, outcome: str) -> None:
    claim = claimed(engine)
    assert store.record_attempt(engine, attempt_record(claim, outcome, http_status=400), "w1")
    assert store.get_delivery(engine, claim.request_id)["status"] == outcome

    assert store.claim(engine, claim.request_id, "w2") is None
    got = store.get_delivery(engine, claim.request_id)
    assert got["status"] == outcome
    assert got["attempts"] == 1
    assert got["worker"] is None


def test_claim_of_a_delivery_failed_without_attempt_returns_none(engine) -> None:
    row = new_delivery()
    store.insert_deliveries(engine, [row])
    store.fail_delivery(engine, row.request_id, "endpoint gone")
    got = store.get_delivery(engine, row.request_id)
    assert got["status"] == DeliveryStatus.FAILED
    assert got["reason"] == "endpoint gone"
    assert store.claim(engine, row.request_id, "w1") is None
    assert store.get_delivery(engine, row.request_id)["attempts"] == 0


def test_a_retrying_delivery_is_claimable_again(engine) -> None:
    claim = claimed(engine)
    due = utcnow() + timedelta(seconds=30)
    assert store.record_attempt(
        engine, attempt_record(claim, "retry_scheduled", http_status=503, next_attempt_at=due), "w1"
    )
    second = store.claim(engine, claim.request_id, "w2")
    assert second is not None
    assert second.attempt == 2
    assert store.get_delivery(engine, claim.request_id)["worker"] == "w2"


# --- grant_retry -----------------------------------------------------------------------------


def test_grant_retry_reopens_only_failed_deliveries(engine) -> None:
    failed = claimed(engine, attempt_limit=2)
    due = utcnow() + timedelta(minutes=1)
    store.record_attempt(
        engine, attempt_record(failed, "retry_scheduled", http_status=503, next_attempt_at=due), "w1"
    )
    second = store.claim(engine, failed.request_id, "w1")
    store.record_attempt(engine, attempt_record(second, "failed", http_status=503), "w1", reason="exhausted")
    assert store.get_delivery(engine, failed.request_id)["attempts"] == 2

    queued = new_delivery()
    store.insert_deliveries(engine, [queued])
    delivered = claimed(engine)
    store.record_attempt(engine, attempt_record(delivered, "delivered"), "w1")
    in_flight = claimed(engine)
    retrying = claimed(engine)
    store.record_attempt(
        engine, attempt_record(retrying, "retry_scheduled", http_status=503, next_attempt_at=due), "w1"
    )
    others = {
        queued.request_id: store.get_delivery(engine, queued.request_id),
        delivered.request_id: store.get_delivery(engine, delivered.request_id),
        in_flight.request_id: store.get_delivery(engine, in_flight.request_id),
        retrying.request_id: store.get_delivery(engine, retrying.request_id),
    }

    now = utcnow()
    assert store.grant_retry(engine, failed.request_id, max_attempts=5, now=now) is True
    got = store.get_delivery(engine, failed.request_id)
    assert got["status"] == DeliveryStatus.QUEUED
    assert got["attempts"] == 2
    assert got["attempt_limit"] == 2 + 5
    assert got["reason"] is None
    assert got["next_attempt_at"] is None
    assert got["updated_at"] == now

    # A second grant finds it queued, not failed.
    assert store.grant_retry(engine, failed.request_id, max_attempts=5) is False
    assert store.get_delivery(engine, failed.request_id)["attempt_limit"] == 7

    for request_id, before in others.items():
        assert store.grant_retry(engine, request_id, max_attempts=5) is False
        assert store.get_delivery(engine, request_id) == before
    assert store.grant_retry(engine, str(uuid.uuid4()), max_attempts=5) is False

    # The re-opened delivery can be claimed, and its attempt numbers continue.
    third = store.claim(engine, failed.request_id, "w1")
    assert third.attempt == 3
    assert third.attempt_limit == 7


# --- reads -----------------------------------------------------------------------------------


# --- several SQLite writers at once ----------------------------------------------------------


def _sqlite_worker(database_url: str, worker: str, request_ids: list[str], start, errors) -> None:
    try:
        engine = store.create_store_engine(database_url)
        start.wait(timeout=30)
        for request_id in request_ids:
            claim = store.claim(engine, request_id, worker)
            if claim is None:
                raise AssertionError(f"{worker} could not claim {request_id}")
            if not store.record_attempt(engine, attempt_record(claim, "delivered"), worker):
                raise AssertionError(f"{worker} lost its claim on {request_id}")
            store.get_delivery(engine, request_id)  # a read between writes, as the worker does
        engine.dispose()
    except BaseException:  # noqa: BLE001 - reported to the parent
        errors.put(f"{worker}: {traceback.format_exc()}")


def test_sqlite_several_processes_write_at_once(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite-only: PostgreSQL has its own concurrency")
    engine = store.create_store_engine(database_url)
    rows = [new_delivery() for _ in range(200)]
    store.insert_deliveries(engine, rows)
    engine.dispose()

    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(4)
    errors = ctx.Queue()
    processes = [
        ctx.Process(
            target=_sqlite_worker,
            args=(
                database_url,
                f"proc-{i}",
                [r.request_id for r in rows[i * 50 : (i + 1) * 50]],
                start,
                errors,
            ),
        )
        for i in range(4)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=120)
    reported = []
    while True:
        try:
            reported.append(errors.get(timeout=0.5))
        except queue.Empty:
            break
    for p in processes:
        if p.is_alive():
            p.kill()
    assert not any("database is locked" in e for e in reported), reported
    assert reported == []
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]

    engine = store.create_store_engine(database_url)
    try:
        assert len(store.list_deliveries(engine, store.Selection(statuses=("delivered",)), limit=1000)) == 200
        assert store.list_deliveries(engine, store.Selection(statuses=("in_flight",)), limit=1000) == []
        assert attempt_count(engine) == 200
        with engine.connect() as conn:
            per_delivery = conn.execute(
                sa.select(store.ATTEMPTS.c.request_id, sa.func.count()).group_by(store.ATTEMPTS.c.request_id)
            ).all()
        assert sorted(per_delivery) == sorted((r.request_id, 1) for r in rows)
    finally:
        engine.dispose()


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path) -> None:
    """Reads use a deferred transaction: a report never queues behind (or blocks) a worker's write."""
    engine = store.create_store_engine(f"sqlite:///{tmp_path / 'read.db'}")
    engine.dialect  # noqa: B018
    store.insert_deliveries(
        engine,
        [
            store.NewDelivery(
                "11111111-1111-4111-8111-111111111111", "order_changed", "a", "https://a.example", "{}", 3
            )
        ],
    )
    writer = engine.connect()
    writer.begin()  # BEGIN IMMEDIATE: holds the write lock
    writer.execute(store.DELIVERIES.update().values(status="failed"))
    try:
        row = store.get_delivery(engine, "11111111-1111-4111-8111-111111111111")
        assert row is not None and row["status"] == "queued"  # the committed state, not the writer's
    finally:
        writer.rollback()
        writer.close()
        engine.dispose()


def test_grant_retries_uses_each_endpoints_budget(database_url) -> None:
    engine = store.create_store_engine(database_url)
    ids = ["21111111-1111-4111-8111-111111111111", "31111111-1111-4111-8111-111111111111"]
    store.insert_deliveries(
        engine,
        [
            store.NewDelivery(
                ids[0], "order_changed", "a", "https://a.example", "{}", 8, status=DeliveryStatus.FAILED
            ),
            store.NewDelivery(
                ids[1], "order_changed", "b", "https://b.example", "{}", 8, status=DeliveryStatus.FAILED
            ),
        ],
    )
    assert sorted(store.grant_retries(engine, [*ids, "missing"], 8, {"b": 3})) == sorted(ids)
    assert store.get_delivery(engine, ids[0])["attempt_limit"] == 8
    assert store.get_delivery(engine, ids[1])["attempt_limit"] == 3
    assert store.grant_retries(engine, ids, 8) == []  # no longer failed: left alone
    engine.dispose()


# --- batches ---------------------------------------------------------------------------------


def test_claim_many_claims_only_the_claimable_in_one_call(engine) -> None:
    queued = [new_delivery() for _ in range(3)]
    done = new_delivery()
    store.insert_deliveries(engine, [*queued, done])
    finished = store.claim(engine, done.request_id, "w1")
    store.record_attempt(engine, attempt_record(finished, "delivered"), "w1")
    held = store.claim(engine, queued[0].request_id, "other-worker")
    unknown = str(uuid.uuid4())

    ids = [q.request_id for q in queued] + [done.request_id, unknown]
    claims = store.claim_many(engine, ids, "w1", now=T0)

    assert set(claims) == {queued[1].request_id, queued[2].request_id}
    for request_id, claim in claims.items():
        assert claim.request_id == request_id
        assert claim.attempt == 1
        got = store.get_delivery(engine, request_id)
        assert (got["status"], got["worker"], got["attempt_started_at"]) == (
            DeliveryStatus.IN_FLIGHT,
            "w1",
            T0,
        )
    assert store.get_delivery(engine, held.request_id)["worker"] == "other-worker"
    assert store.get_delivery(engine, done.request_id)["status"] == DeliveryStatus.DELIVERED


def test_claim_many_called_again_with_the_same_time_returns_its_own_claims(engine) -> None:
    """A lost commit acknowledgement: the retry with the same ``now`` recognizes its claims,
    and neither a later call nor another worker gets them."""
    rows = [new_delivery() for _ in range(4)]
    store.insert_deliveries(engine, rows)
    ids = [r.request_id for r in rows]
    first = store.claim_many(engine, ids, "w1", now=T0)
    again = store.claim_many(engine, ids, "w1", now=T0)
    assert again == first and len(first) == 4
    assert store.claim_many(engine, ids, "w1", now=T0 + timedelta(seconds=1)) == {}
    assert store.claim_many(engine, ids, "w2", now=T0) == {}
    assert {store.get_delivery(engine, i)["attempts"] for i in ids} == {1}


def test_existing_deliveries(engine) -> None:
    rows = [new_delivery() for _ in range(2)]
    store.insert_deliveries(engine, rows)
    unknown = str(uuid.uuid4())
    assert store.existing_deliveries(engine, [rows[0].request_id, unknown]) == {rows[0].request_id}
    assert store.existing_deliveries(engine, []) == set()
