"""The PHI lifecycle's shared rows (a pharmacy endpoint, messages carrying a patient's text,
deliveries moved to a final status and aged), and the worker applying retention on its own,
against the real Redis, on SQLite and PostgreSQL. The commands of the lifecycle are tested in
tests/cli/ (test_retention.py, test_log_erase.py, test_storage.py, test_audit.py,
test_resend.py), their doors in tests/ops/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import dispatch, store
from dispatcher.store import audit
from dispatcher.times import utcnow
from dispatcher.vocabulary import AuditAction
from dispatcher.worker import retention

ENDPOINT = {"name": "pharmacy", "url": "http://127.0.0.1:9/hook", "key": "pharmacy-key-1"}
MESSAGE = "Take 20 mg of Lisinopril with breakfast"


def message(patient: str = "PAT-1", encounter: str = "ENC-1") -> dict:
    return {
        "patient_id": patient,
        "encounter_id": encounter,
        "author_id": "DR-1",
        "is_doctor": True,
        "channel": "patient",
        "message": f"{MESSAGE} ({patient}/{encounter})",
        "attachment": [],
        "created_at": "2026-12-01T09:00:00Z",
    }


def finished(engine, request_id: str, status: str = "delivered", days_ago: float = 0) -> None:
    """Moves a dispatched delivery to a final status, last updated ``days_ago``."""
    claim = store.claim(engine, request_id, "w1")
    record = store.AttemptRecord(
        request_id=request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=claim.url,
        attempt=claim.attempt,
        outcome=status,
        http_status=200 if status == "delivered" else 404,
        error=None,
        response_body=f"echo {MESSAGE}",
        duration_ms=10,
        next_attempt_at=None,
        request_payload=claim.payload,
        request_headers={"X-Webhook-Key": "[redacted]"},
        created_at=utcnow(),
    )
    store.record_attempt(engine, record, "w1")
    aged(engine, request_id, days_ago)


def aged(engine, request_id: str, days_ago: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.update()
            .where(store.DELIVERIES.c.request_id == request_id)
            .values(updated_at=utcnow() - timedelta(days=days_ago))
        )


def snapshot(engine) -> list[list[tuple]]:
    """Every row of every table: what a plan must leave as it found it."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return [
            [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in store.METADATA.sorted_tables
        ]


@pytest.fixture
def runtime(make_runtime, database_url: str):
    return make_runtime(
        database_url=database_url,
        endpoints=[ENDPOINT],
        retention={"payload_days": 30, "rows_days": 90},
    )


def test_the_worker_applies_retention_once_an_hour_one_worker_at_a_time(runtime, redis_client) -> None:
    engine = runtime.engine
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3)]
    for request_id in ids:
        finished(engine, request_id, days_ago=45)
    report = retention.apply_if_due(runtime)
    assert report is not None and report.erased == 3 and report.finished
    assert redis_client.ttl(retention.DUE_KEY) > 3500
    assert retention.apply_if_due(runtime) is None  # done this hour, by this worker or another
    (entry,) = audit.entries(engine)
    assert (entry.actor, entry.action) == ("worker test-worker", AuditAction.RETENTION_RUN)
    assert entry.selection == {"payload_days": 30, "rows_days": 90}

    redis_client.delete(retention.DUE_KEY)
    more = [dispatch("message_created", message())[0] for _ in range(3)]
    for request_id in more:
        finished(engine, request_id, days_ago=45)
    cut = retention.apply(engine, 30, None, budget_seconds=0, batch=1)  # a round out of time
    assert cut.erased == 1 and not cut.finished
    assert retention.apply_if_due(runtime).erased == 2


def test_a_round_out_of_time_stops_after_a_batch_of_old_rows(runtime) -> None:
    engine = runtime.engine
    ids = [dispatch("message_created", message(f"PAT-{n}"))[0] for n in range(3)]
    for request_id in ids:
        finished(engine, request_id, days_ago=100)
    cut = retention.apply(engine, 30, 90, budget_seconds=0, batch=1)
    assert (cut.deleted, cut.erased, cut.finished) == (1, 0, False)  # rows first; payloads wait
    rest = retention.apply(engine, 30, 90)
    assert (rest.deleted, rest.finished) == (2, True)
    assert [store.get_delivery(engine, request_id) for request_id in ids] == [None, None, None]
