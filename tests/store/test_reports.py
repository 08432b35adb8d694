"""The queries behind ``log stats`` and ``log export`` (:mod:`dispatcher.store.reports`): the
nearest-rank percentile, and keyset paging that neither skips nor repeats rows sharing a time.
The commands themselves, on a hand-built log and on 100,000 rows, are tested in
tests/cli/test_log_reports.py, with the row builders below.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from dispatcher import store
from dispatcher.store import reports
from dispatcher.times import utcnow

OC, CA = "order_changed", "case_assigned_to_clinician"
NOW = utcnow().replace(microsecond=0)


def delivery(
    request_id: str, event: str, endpoint: str, status: str, attempts: int, created_at: datetime
) -> dict:
    return {
        "request_id": request_id,
        "event": event,
        "endpoint": endpoint,
        "url": f"https://{endpoint}.example.test/hook",
        "status": status,
        "attempts": attempts,
        "attempt_limit": 5,
        "last_http_status": None,
        "payload": json.dumps({"event": event, "metadata": {"request_id": request_id}}),
        "created_at": created_at,
        "updated_at": created_at,
    }


def attempt(d: dict, number: int, outcome: str, duration_ms: int | None, status: int | None = None) -> dict:
    created = d["created_at"] + timedelta(seconds=10 * number)
    return {
        "request_id": d["request_id"],
        "event": d["event"],
        "endpoint": d["endpoint"],
        "url": d["url"],
        "attempt": number,
        "retry": number > 1,
        "outcome": outcome,
        "http_status": status,
        "error": None if outcome == "delivered" else f"HTTP {status}" if status else "connection refused",
        "response_body": "ok" if outcome == "delivered" else None,
        "duration_ms": duration_ms,
        "next_attempt_at": created + timedelta(seconds=30) if outcome == "retry_scheduled" else None,
        "request_payload": json.dumps({"event": d["event"], "metadata": {"retry": number > 1}}),
        "request_headers": json.dumps({"Content-Type": "application/json", "X-Webhook-Key": "[redacted]"}),
        "created_at": created,
    }


def test_nearest_rank():
    assert [reports.nearest_rank(50, n) for n in (1, 2, 3, 4, 9)] == [1, 1, 2, 2, 5]
    assert [reports.nearest_rank(95, n) for n in (1, 2, 19, 20, 21, 100_000)] == [1, 2, 19, 19, 20, 95_000]


def test_export_rows_pages_across_equal_timestamps(make_runtime):
    """Keyset paging on deliveries must not skip or repeat rows sharing one created_at."""
    runtime = make_runtime()
    same = NOW - timedelta(minutes=5)
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.insert(),
            [delivery(f"r{i:03d}", OC, "partner-a", "queued", 0, same) for i in range(25)],
        )
    rows = list(reports.export_rows(runtime.engine, "deliveries", store.Selection(), page_size=7))
    assert [row.request_id for row in rows] == [f"r{i:03d}" for i in range(25)]
    assert reports.count_rows(runtime.engine, "deliveries", store.Selection()) == 25
