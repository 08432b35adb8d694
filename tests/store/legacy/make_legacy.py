"""Makes the legacy databases the upgrade tests start from, with the code of the last version
before migrations (commit c8f04ef), and dumps them as SQL beside this file.

    git -C /work/main archive c8f04ef | tar -x -C /tmp/legacy-code
    PYTHONPATH=/tmp/legacy-code python tests/store/legacy/make_legacy.py sqlite:////tmp/legacy.db
    PYTHONPATH=/tmp/legacy-code python tests/store/legacy/make_legacy.py postgresql+psycopg://postgres@127.0.0.1/legacy

It is run by hand, once; the tests load the dumps (sqlite.sql, postgresql.sql). The rows cover
every status (queued, in_flight, retrying, delivered, failed, a held back one), attempts of
every outcome, two events with a patient and one without, a replay and a disabled endpoint.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from dispatcher import store
from dispatcher.config import parse_settings
from dispatcher.intake.prepare import prepare
from dispatcher.store.records import AttemptRecord

T0 = datetime(2026, 11, 1, 9, 0, 0, tzinfo=UTC)
SETTINGS = parse_settings(
    {
        "environment": "staging",
        "endpoints": [
            {"name": "pharmacy", "url": "http://127.0.0.1:9/pharmacy", "key": "legacy-key-1"},
            {"name": "gone", "url": "http://127.0.0.1:9/gone"},
        ],
    },
    env={},
)
MESSAGE = {
    "patient_id": "PATIENT-LEGACY-7",
    "encounter_id": "ENC-LEGACY-3",
    "author_id": "DR-LEGACY-2",
    "is_doctor": True,
    "reply_message_id": None,
    "channel": "patient",
    "message": "Please take 20 mg of Lisinopril with breakfast (legacy row)",
    "attachment": [],
    "created_at": "2026-11-01T09:00:00Z",
}
ORDER = {"order_number": "ORDER-LEGACY-9", "status": "updated", "created_at": "2026-11-01T09:00:00Z"}


def attempt(claim: store.Claim, outcome: str, status: int | None, minutes: int) -> AttemptRecord:
    return AttemptRecord(
        request_id=claim.request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=claim.url,
        attempt=claim.attempt,
        outcome=outcome,
        http_status=status,
        error=None if outcome == "delivered" else f"HTTP {status}",
        response_body='{"received": true, "echo": "Lisinopril"}',
        duration_ms=40,
        next_attempt_at=T0 + timedelta(minutes=minutes + 5) if outcome == "retry_scheduled" else None,
        request_payload=claim.payload,
        request_headers={"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"},
        created_at=T0 + timedelta(minutes=minutes),
    )


def main(url: str) -> None:
    engine = store.create_store_engine(url)
    messages = prepare(
        SETTINGS, "message_created", [MESSAGE] * 3, endpoints=["pharmacy"], now=T0, disabled=()
    )
    orders = prepare(SETTINGS, "order_changed", [ORDER] * 3, endpoints=["pharmacy"], now=T0, disabled=())
    held = prepare(SETTINGS, "message_created", [MESSAGE], endpoints=["gone"], now=T0, disabled={"gone"})
    rows = messages + orders + held
    store.insert_deliveries(engine, rows, now=T0)
    delivered, retrying, failed = messages
    in_flight, queued, replayed = orders
    claims = store.claim_many(engine, [r.request_id for r in messages], "legacy-worker.1", now=T0)
    store.record_attempts(
        engine,
        [
            (attempt(claims[delivered.request_id], "delivered", 200, 1), None),
            (attempt(claims[retrying.request_id], "retry_scheduled", 503, 1), None),
            (attempt(claims[failed.request_id], "failed", 404, 1), "HTTP 404 is not retried"),
        ],
        "legacy-worker.1",
    )
    store.claim_many(engine, [in_flight.request_id], "legacy-worker.2", now=T0 + timedelta(minutes=2))
    store.fail_delivery(engine, replayed.request_id, "stored payload is unusable: test", now=T0)
    store.disable(engine, "gone", "HTTP 410 Gone")
    assert {r.request_id for r in rows} == store.existing_deliveries(engine, [r.request_id for r in rows])
    print(f"{len(rows)} deliveries in {url} (queued: {queued.request_id})")
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
