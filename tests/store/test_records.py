"""Recording attempts (dispatcher.store.records), on both backends: one row per attempt and the
delivery moved on in one transaction, by the holder of the claim only; an interrupted attempt
gives the attempt back; a batch is written in one transaction."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dispatcher import store
from dispatcher.times import utcnow
from dispatcher.vocabulary import AttemptOutcome, DeliveryStatus
from tests.store.rows import attempt_count, attempt_record, claimed


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
