"""Rows for the store's tests: new deliveries, attempt records and claims, built one way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from dispatcher import store
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


# --- tables ----------------------------------------------------------------------------------
