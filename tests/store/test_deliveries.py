"""The store on both backends (SQLite and the real PostgreSQL): tables, claims, attempt records,
the retry budget, and several SQLite writer processes at once."""

from __future__ import annotations

import json
import multiprocessing
import queue
import traceback
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from dispatcher import store
from dispatcher.times import utcnow
from dispatcher.vocabulary import AttemptOutcome, DeliveryStatus
from tests.store.rows import T0, attempt_count, attempt_record, claimed, new_delivery


def test_tables_are_created_on_first_use(database_url: str) -> None:
    plain = sa.create_engine(database_url)
    try:
        before = set(sa.inspect(plain).get_table_names())
        assert store.DELIVERIES.name not in before
        assert store.ATTEMPTS.name not in before

        engine = store.create_store_engine(database_url)
        try:
            after = set(sa.inspect(plain).get_table_names())
            assert {"webhook_deliveries", "webhook_event_transaction_log"} <= after
            # Usable at once, and a second engine on the same database does not trip over them.
            store.insert_deliveries(engine, [new_delivery("11111111-1111-4111-8111-111111111111")])
            again = store.create_store_engine(database_url)
            assert store.get_delivery(again, "11111111-1111-4111-8111-111111111111") is not None
            again.dispose()
        finally:
            engine.dispose()
    finally:
        plain.dispose()


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


def test_datetimes_come_back_timezone_aware_utc(engine) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2026, 3, 1, 14, 30, 15, 250000, tzinfo=plus_two)  # 12:30:15.25 UTC
    naive = datetime(2026, 3, 1, 9, 0, 0)  # naive means UTC
    a, b = new_delivery(), new_delivery()
    store.insert_deliveries(engine, [a], now=local)
    store.insert_deliveries(engine, [b], now=naive)

    got_a = store.get_delivery(engine, a.request_id)
    got_b = store.get_delivery(engine, b.request_id)
    for value in (got_a["created_at"], got_a["updated_at"], got_b["created_at"]):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert got_a["created_at"] == local
    assert got_a["created_at"].hour == 12 and got_a["created_at"].minute == 30
    assert got_a["created_at"].microsecond == 250000
    assert got_b["created_at"] == naive.replace(tzinfo=UTC)

    # Attempt rows and next_attempt_at too.
    claim = store.claim(engine, a.request_id, "w1", now=local)
    assert claim is not None
    due = datetime(2026, 3, 1, 15, 0, 0, tzinfo=plus_two)
    assert store.record_attempt(
        engine,
        attempt_record(claim, "retry_scheduled", http_status=503, next_attempt_at=due, created_at=local),
        "w1",
    )
    (attempt,) = store.list_attempts(engine, a.request_id)
    for key in ("created_at", "next_attempt_at"):
        assert attempt[key].utcoffset() == timedelta(0)
    assert attempt["next_attempt_at"] == due
    assert attempt["next_attempt_at"].hour == 13
    delivery = store.get_delivery(engine, a.request_id)
    assert delivery["next_attempt_at"] == due
    assert delivery["attempt_started_at"] == local
    assert delivery["attempt_started_at"].utcoffset() == timedelta(0)


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


# --- record_attempt --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "http_status", "status"),
    [
        ("delivered", 200, DeliveryStatus.DELIVERED),
        ("retry_scheduled", 503, DeliveryStatus.RETRYING),
        ("failed", 400, DeliveryStatus.FAILED),
    ],
)
def test_record_attempt_writes_one_row_and_moves_the_status(
    engine, outcome: str, http_status: int, status: str
) -> None:
    claim = claimed(engine, worker="w1")
    other = claimed(engine, worker="w1")  # another delivery: its rows must not be touched
    now = utcnow()
    due = now + timedelta(seconds=42) if outcome == "retry_scheduled" else None
    record = attempt_record(claim, outcome, http_status=http_status, next_attempt_at=due, created_at=now)

    assert store.record_attempt(engine, record, "w1", reason="why" if outcome == "failed" else None) is True

    assert attempt_count(engine) == 1
    (row,) = store.list_attempts(engine, claim.request_id)
    assert row["request_id"] == claim.request_id
    assert row["attempt"] == 1
    assert row["retry"] is False
    assert row["outcome"] == outcome
    assert row["http_status"] == http_status
    assert row["response_body"] == '{"ok":true}'
    assert row["duration_ms"] == 12
    assert row["next_attempt_at"] == due
    assert row["request_payload"] == claim.payload
    assert json.loads(row["request_headers"]) == {
        "Content-Type": "application/json",
        "X-Webhook-Key": "[redacted]",
    }
    assert row["created_at"] == now

    got = store.get_delivery(engine, claim.request_id)
    assert got["status"] == status
    assert got["last_http_status"] == http_status
    assert got["worker"] is None
    assert got["next_attempt_at"] == due
    assert got["updated_at"] == now
    assert got["reason"] == ("why" if outcome == "failed" else None)
    assert store.get_delivery(engine, other.request_id)["status"] == DeliveryStatus.IN_FLIGHT


def test_second_attempt_is_marked_retry(engine) -> None:
    claim = claimed(engine)
    store.record_attempt(engine, attempt_record(claim, "retry_scheduled", http_status=503), "w1")
    second = store.claim(engine, claim.request_id, "w1")
    assert store.record_attempt(engine, attempt_record(second, "delivered"), "w1")
    rows = store.list_attempts(engine, claim.request_id)
    assert [(r["attempt"], r["retry"], r["outcome"]) for r in rows] == [
        (1, False, "retry_scheduled"),
        (2, True, "delivered"),
    ]
    assert store.get_delivery(engine, claim.request_id)["status"] == DeliveryStatus.DELIVERED


def test_record_attempt_by_a_worker_without_the_claim_writes_nothing(engine) -> None:
    claim = claimed(engine, worker="holder")
    before = store.get_delivery(engine, claim.request_id)

    assert store.record_attempt(engine, attempt_record(claim, "delivered"), "intruder") is False

    assert attempt_count(engine) == 0
    assert store.get_delivery(engine, claim.request_id) == before
    assert before["status"] == DeliveryStatus.IN_FLIGHT
    assert before["worker"] == "holder"


def test_record_attempt_after_the_claim_was_released_writes_nothing(engine) -> None:
    claim = claimed(engine, worker="w1")
    assert store.record_attempt(engine, attempt_record(claim, "delivered"), "w1")
    # The same worker recording again (a duplicate job) holds no claim any more.
    assert store.record_attempt(engine, attempt_record(claim, "failed", http_status=500), "w1") is False
    assert attempt_count(engine) == 1
    assert store.get_delivery(engine, claim.request_id)["status"] == DeliveryStatus.DELIVERED


def test_interrupted_record_gives_the_attempt_back(engine) -> None:
    claim = claimed(engine, worker="dead-worker", attempt_limit=3)
    now = utcnow()
    record = attempt_record(
        claim, AttemptOutcome.INTERRUPTED, http_status=None, next_attempt_at=now, created_at=now
    )

    assert store.record_attempt(engine, record, "dead-worker") is True

    got = store.get_delivery(engine, claim.request_id)
    assert got["attempt_limit"] == 4
    assert got["attempts"] == 1
    assert got["status"] == DeliveryStatus.RETRYING
    assert got["worker"] is None
    (row,) = store.list_attempts(engine, claim.request_id)
    assert row["outcome"] == "interrupted"
    assert row["http_status"] is None


def test_a_normal_record_leaves_the_attempt_limit_alone(engine) -> None:
    claim = claimed(engine, attempt_limit=3)
    store.record_attempt(engine, attempt_record(claim, "retry_scheduled", http_status=503), "w1")
    assert store.get_delivery(engine, claim.request_id)["attempt_limit"] == 3


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


def test_record_attempts_writes_each_held_claim_in_one_transaction(engine) -> None:
    mine = [claimed(engine, worker="w1") for _ in range(3)]
    theirs = claimed(engine, worker="w2")
    due = utcnow() + timedelta(seconds=30)
    entries = [
        (attempt_record(mine[0], "delivered"), None),
        (attempt_record(mine[1], "retry_scheduled", http_status=503, next_attempt_at=due), None),
        (attempt_record(mine[2], "failed", http_status=400), "HTTP 400 is not retried"),
        (attempt_record(theirs, "delivered"), None),  # not this worker's claim: nothing written
    ]

    assert store.record_attempts(engine, entries, "w1") == [True, True, True, False]

    statuses = [store.get_delivery(engine, c.request_id) for c in (*mine, theirs)]
    assert [s["status"] for s in statuses] == ["delivered", "retrying", "failed", "in_flight"]
    assert statuses[1]["next_attempt_at"] == due
    assert statuses[2]["reason"] == "HTTP 400 is not retried"
    assert [attempt_count(engine, c.request_id) for c in (*mine, theirs)] == [1, 1, 1, 0]


def test_existing_deliveries(engine) -> None:
    rows = [new_delivery() for _ in range(2)]
    store.insert_deliveries(engine, rows)
    unknown = str(uuid.uuid4())
    assert store.existing_deliveries(engine, [rows[0].request_id, unknown]) == {rows[0].request_id}
    assert store.existing_deliveries(engine, []) == set()
