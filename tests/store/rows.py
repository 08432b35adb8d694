"""Rows for the store's tests: new deliveries, attempt records, claims and a delivery holding PHI,
built one way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from dispatcher import store
from dispatcher.store import resealing
from dispatcher.times import utcnow

T0 = datetime(2026, 1, 30, 12, 0, 0, 123456, tzinfo=UTC)


def new_delivery(
    request_id: str | None = None,
    *,
    event: str = "order_changed",
    endpoint: str = "partner-a",
    attempt_limit: int = 5,
    payload: str | None = None,
) -> store.NewDelivery:
    request_id = request_id or str(uuid.uuid4())
    return store.NewDelivery(
        request_id=request_id,
        event=event,
        endpoint=endpoint,
        url="http://127.0.0.1:9/webhooks",
        payload=payload or json.dumps({"event": event, "metadata": {"request_id": request_id}}),
        attempt_limit=attempt_limit,
    )


def attempt_record(
    claim: store.Claim,
    outcome: str,
    *,
    http_status: int | None = 200,
    next_attempt_at: datetime | None = None,
    created_at: datetime | None = None,
) -> store.AttemptRecord:
    return store.AttemptRecord(
        request_id=claim.request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=claim.url,
        attempt=claim.attempt,
        outcome=outcome,
        http_status=http_status,
        error=None if outcome == "delivered" else "something went wrong",
        response_body='{"ok":true}',
        duration_ms=12,
        next_attempt_at=next_attempt_at,
        request_payload=claim.payload,
        request_headers={"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"},
        created_at=created_at or utcnow(),
    )


def attempt_count(engine, request_id: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(store.ATTEMPTS)
    if request_id is not None:
        query = query.where(store.ATTEMPTS.c.request_id == request_id)
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def claimed(engine, worker: str = "w1", **kwargs) -> store.Claim:
    row = new_delivery(**kwargs)
    store.insert_deliveries(engine, [row])
    claim = store.claim(engine, row.request_id, worker)
    assert claim is not None
    return claim


# --- a delivery holding PHI, and its columns as stored ------------------------------------


SECRET_TEXT = "Take 40 mg of Furosemide at 7am - patient Ada Lovelace"


def phi_delivery() -> store.NewDelivery:
    row = new_delivery(event="message_created")
    body = {
        "event": "message_created",
        "data": {"patient_id": "P-1", "encounter_id": "E-1", "message": SECRET_TEXT},
    }
    return store.NewDelivery(**{**row.__dict__, "payload": json.dumps(body)})


def deliver(engine, row: store.NewDelivery) -> None:
    store.insert_deliveries(engine, [row], now=T0)
    claim = store.claim(engine, row.request_id, "w1")
    record = attempt_record(claim, "delivered")
    record = type(record)(**{**record.__dict__, "response_body": f"echo: {SECRET_TEXT}"})
    store.record_attempt(engine, record, "w1")


def raw_values(engine) -> list[str]:
    """Every PHI column as stored."""
    with engine.connect() as conn:
        return [
            value
            for table, column, _ in resealing.COLUMNS
            for (value,) in conn.execute(sa.select(sa.type_coerce(table.c[column], sa.String())))
            if value is not None
        ]
