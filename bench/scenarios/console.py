"""Scenario: the operator console's pages over a log of 1,000,000 deliveries (100,000 with
``--quick``), on SQLite and on PostgreSQL (database ``bench``): each page's server time, p50 and
p95 of :data:`RUNS` requests after :data:`WARMUP` (target: at most 150 ms).

The log is filled straight into the tables, in the shape workers leave it: a month of
deliveries to five endpoints, six events, 95 % delivered, 3 % failed, the rest retrying or
queued, one attempt each, patients by keyed hash. The pages are requested in this process
through Starlette's test client (the app and the store are the code under test; no network),
signed in as an operator. Redis DB 4 serves the queue page.

Run alone: ``python -m bench.scenarios.console [--rows N] [--only sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import PG_URL, REDIS_URL, Sizes, say
from bench.harness.driver import reset_database
from dispatcher import store
from dispatcher.config import parse_settings
from dispatcher.console.app import create_app
from dispatcher.console.auth import hash_password
from dispatcher.console.filters import patient_token
from dispatcher.console.web import ACCESS_LOGGER
from dispatcher.runtime import Runtime
from dispatcher.store import browsing, counts
from dispatcher.vocabulary import EVENT_NAMES

RUNS = 30
WARMUP = 3
TARGET_MS = 150.0
CHUNK = 20_000
ENDPOINTS = tuple(f"partner-{n}" for n in range(1, 6))
PATIENTS = 50_000
DAYS = 30
PASSWORD = "bench-console-password"
PAYLOAD = '{"event":"%s","data":{"patient_id":"P-%d","note":"bench"},"metadata":{"request_id":"%s"}}'


def status_of(n: int) -> str:
    """95 % delivered, 3 % failed, 1 % retrying, 1 % queued, spread evenly."""
    slot = n % 100
    return "failed" if slot < 3 else "retrying" if slot == 3 else "queued" if slot == 4 else "delivered"


def request_id(n: int) -> str:
    return str(uuid.UUID(int=n + 1, version=4))


def fill(runtime: Runtime, rows: int, now: datetime) -> None:
    """``rows`` deliveries over the last :data:`DAYS` days, newest ``n = 0``, each with its attempt."""
    keyring = runtime.keyring
    patient_keys = [keyring.index(f"P-{p}") for p in range(min(PATIENTS, rows))]
    step = timedelta(days=DAYS) / rows
    for start in range(0, rows, CHUNK):
        deliveries, attempts = [], []
        for n in range(start, min(start + CHUNK, rows)):
            rid, status, event = request_id(n), status_of(n), EVENT_NAMES[n % len(EVENT_NAMES)]
            endpoint, created = ENDPOINTS[n % len(ENDPOINTS)], now - step * n
            ok = status == "delivered"
            deliveries.append(
                {
                    "request_id": rid,
                    "event": event,
                    "endpoint": endpoint,
                    "url": "https://partner.example.com/hook",
                    "status": status,
                    "attempts": 1,
                    "attempt_limit": 8,
                    "last_http_status": 200 if ok else 503,
                    "payload": PAYLOAD % (event, n % PATIENTS, rid),
                    "created_at": created,
                    "updated_at": created,
                    "patient_key": patient_keys[n % len(patient_keys)],
                    "encounter_key": "-",
                }
            )
            attempts.append(
                {
                    "request_id": rid,
                    "event": event,
                    "endpoint": endpoint,
                    "url": "https://partner.example.com/hook",
                    "attempt": 1,
                    "retry": False,
                    "outcome": "delivered" if ok else "failed",
                    "http_status": 200 if ok else 503,
                    "error": None if ok else "HTTP 503",
                    "duration_ms": 40 + n % 200,
                    "response_body": '{"ok":true}' if ok else '{"error":"unavailable"}',
                    "created_at": created,
                }
            )
        with runtime.engine.begin() as conn:
            conn.execute(store.DELIVERIES.insert(), deliveries)
            conn.execute(store.ATTEMPTS.insert(), attempts)
            counts.add(conn, Counter(d["status"] for d in deliveries))
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def pages(runtime: Runtime, secret: str, rows: int) -> dict[str, str]:
    """The pages measured: every page of the console, the deliveries page under each filter."""
    deep = None
    for _ in range(20):  # the 21st page of the unfiltered listing
        _page, deep = browsing.newest_first(runtime.engine, store.Selection(), deep, 50)
    assert deep is not None
    token = patient_token(runtime.keyring.candidates("P-4242"), (), secret)
    middle = request_id(rows // 2)
    return {
        "deliveries": "/deliveries",
        "deliveries status=failed": "/deliveries?status=failed",
        "deliveries status=failed endpoint": "/deliveries?status=failed&endpoint=partner-3",
        "deliveries status=retrying event endpoint": "/deliveries?status=retrying&event=order_changed&endpoint=partner-4",
        "deliveries since 2h": "/deliveries?since=2h",
        "deliveries since/until a day, 2 weeks ago": "/deliveries?since=15d&until=14d&endpoint=partner-2",
        "deliveries page 21": f"/deliveries?before={deep[0].isoformat()}~{deep[1]}".replace("+", "%2B"),
        "deliveries request_id": f"/deliveries?request_id={middle}",
        "deliveries patient": f"/deliveries?patient={token}",
        "delivery": f"/deliveries/{middle}",
        "endpoints (24 h chart)": "/endpoints",
        "queue": "/queue",
        "audit": "/audit",
        "confirm retry failed (endpoint, 1 d)": "/actions/retry-failed?status=failed&endpoint=partner-1&since=1d",
        "confirm replay (endpoint, 2 h)": "/actions/replay?endpoint=partner-1&since=2h",
    }


def measure(client: Any, path: str) -> dict[str, float]:
    for _ in range(WARMUP):
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, path
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1]}


PROPOSED_INDEXES = (
    "CREATE INDEX ix_proposed_deliveries_status_endpoint ON webhook_deliveries "
    "(status, endpoint, created_at, request_id)",
    "CREATE INDEX ix_proposed_deliveries_endpoint_created ON webhook_deliveries (endpoint, created_at, request_id)",
)
"""Indexes proposed for the console's filters (not in the schema: a migration would add them);
``--proposed-indexes`` measures the pages again with them."""


def timed_pages(client: Any, label: str, paths: dict[str, str]) -> dict[str, dict[str, float]]:
    results = {}
    for name, path in paths.items():
        results[name] = r = measure(client, path)
        flag = "" if r["p95_ms"] <= TARGET_MS else "  (over target)"
        say(f"   {label} {name}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms{flag}")
    return results


def bench_database(
    tmp: Path, label: str, database_url: str, rows: int, proposed_indexes: bool = False
) -> dict[str, Any]:
    """Fills one database with ``rows`` deliveries and times every page on it (and again with
    :data:`PROPOSED_INDEXES` when ``proposed_indexes``)."""
    from starlette.testclient import TestClient

    reset_database(database_url)
    raw = {
        "environment": "bench",
        "redis_url": REDIS_URL,
        "database_url": database_url,
        "queue_name": "bench-console",
        "process_log": str(tmp / f"logs-console-{label}" / "process.log"),
        "endpoints": [{"name": name, "url": f"https://{name}.example.com/hook"} for name in ENDPOINTS],
        "console": {
            "users": [{"name": "bench", "password_hash": hash_password(PASSWORD), "role": "operator"}]
        },
    }
    runtime = Runtime(parse_settings(raw, env={}), worker_name="bench-console")
    try:
        started = time.perf_counter()
        fill(runtime, rows, datetime.now(UTC))
        filled = time.perf_counter() - started
        say(f"   {label}: {rows:,} deliveries and attempts stored in {filled:.0f} s")
        app = create_app(runtime)
        with TestClient(app) as client:
            login = client.get("/login").text
            csrf = login.split('name="csrf" value="')[1].split('"')[0]
            client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf": csrf})
            logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)  # a line per request is noise here
            paths = pages(runtime, app.state.secret, rows)
            report = {"rows": rows, "fill_s": filled, "pages": timed_pages(client, label, paths)}
            if proposed_indexes:
                with runtime.engine.begin() as conn:
                    for statement in PROPOSED_INDEXES:
                        conn.exec_driver_sql(statement)
                    conn.exec_driver_sql("ANALYZE")
                report["pages_with_proposed_indexes"] = timed_pages(client, f"{label} +indexes", paths)
        return report
    finally:
        runtime.close()


def run(procs: Any, tmp: Path, url: str | None, sizes: Sizes) -> dict[str, Any]:
    """The scenario as ``bench/run.py`` calls it: a million rows on a full run, 100,000 quick."""
    rows = 1_000_000 if sizes.drain >= 20_000 else 100_000
    say(f"console: page times over {rows:,} deliveries")
    return {
        "target_ms": TARGET_MS,
        "sqlite": bench_database(tmp, "sqlite", f"sqlite:///{tmp}/console.db", rows),
        "postgresql": bench_database(tmp, "postgresql", PG_URL, rows),
    }


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--proposed-indexes", action="store_true", help="measure again with PROPOSED_INDEXES")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        for label, database_url in (("sqlite", f"sqlite:///{tmp}/console.db"), ("postgresql", PG_URL)):
            if args.only in (None, label):
                bench_database(Path(tmp), label, database_url, args.rows, args.proposed_indexes)


if __name__ == "__main__":
    main()
