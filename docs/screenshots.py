"""Takes the README's screenshots of the operator console: docs/console-deliveries.png,
docs/console-delivery.png, docs/console-endpoints.png and docs/console-audit.png.

Fills a throwaway SQLite log with made-up deliveries (fake partners, fake patients, their
business ids indexed under a made-up search key) and audit rows, serves the console with uvicorn
on 127.0.0.1 and photographs it in headless Chromium at 1280 x 900 (the narrowest window the
console is made to fit), signed in as an operator. Sessions live in Redis: it uses
``redis://127.0.0.1:6379/14`` (or ``$SCREENSHOTS_REDIS_URL``), where its one session expires like
any other. Run from the repository: ``.venv/bin/python docs/screenshots.py``.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatcher import store  # noqa: E402
from dispatcher.config import BreakerSettings, parse_settings  # noqa: E402
from dispatcher.console.app import create_app  # noqa: E402
from dispatcher.console.auth import hash_password  # noqa: E402
from dispatcher.contract import catalogue, wrapper  # noqa: E402
from dispatcher.contract.validation import validate  # noqa: E402
from dispatcher.ops import endpoint_admin  # noqa: E402
from dispatcher.ops.door import Actor  # noqa: E402
from dispatcher.policy.breaker import Sample  # noqa: E402
from dispatcher.runtime import Runtime  # noqa: E402
from dispatcher.sending import breaker  # noqa: E402
from dispatcher.store import audit, counts, search  # noqa: E402
from dispatcher.vocabulary import EVENT_NAMES, AuditAction  # noqa: E402
from tests.console.browser import chromium, free_port  # noqa: E402

ENDPOINTS = {
    "northside-pharmacy": "https://rx.northside-pharmacy.example/webhooks/baremeds",
    "quest-lab-orders": "https://hooks.lab-orders.example/v2/baremeds",
    "care-coordination": "https://care.example.org/inbound/baremeds",
}
ERRORS = [
    "HTTP 503 Service Unavailable",
    "no answer within 30 s",
    "HTTP 502 Bad Gateway",
    "connection refused by hooks.lab-orders.example:443",
]
"""What the attempts that did not deliver said, in the one-line words the sender writes."""
PASSWORD = "screenshot-pass"
SEARCH_KEY = "made-up-search-key-for-the-screenshots-only-0000"
WIDTH, HEIGHT = 1280, 900


def _delivery(
    runtime: Runtime, rng: random.Random, created: datetime, status: str, endpoint: str, event: str
) -> str:
    request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    data = validate(event, catalogue.get_event(event).example())
    body = wrapper.dumps(
        wrapper.build(
            event=event,
            timestamp=created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            data=data,
            source="Baremeds",
            environment="staging",
            request_id=request_id,
            dispatched_by="clinic-portal",
        )
    )
    tries = 1 if status == "delivered" and rng.random() < 0.85 else rng.randint(2, 4)
    if status == "failed":
        tries = 8
    attempts, at = [], created
    for n in range(1, tries + 1):
        last = n == tries
        outcome = (
            ("delivered" if status == "delivered" else "failed" if status == "failed" else "retry_scheduled")
            if last
            else "retry_scheduled"
        )
        error = None if outcome == "delivered" else rng.choice(ERRORS)
        http = (
            200
            if outcome == "delivered"
            else (int(error[5:8]) if error and error.startswith("HTTP") else None)
        )
        wait = timedelta(seconds=30 * 1.8 ** (n - 1))
        attempts.append(
            {
                "request_id": request_id,
                "event": event,
                "endpoint": endpoint,
                "url": ENDPOINTS[endpoint],
                "attempt": n,
                "retry": n > 1,
                "outcome": outcome,
                "http_status": http,
                "error": error,
                "failure": None
                if http
                else "timeout"
                if "no answer" in (error or "")
                else "connection_error",
                "duration_ms": rng.randint(80, 900) if http else 30000 if "no answer" in (error or "") else 3,
                "response_body": '{"received":true}'
                if http == 200
                else '{"error":"upstream unavailable"}'
                if http
                else None,
                "next_attempt_at": None if last and outcome != "retry_scheduled" else at + wait,
                "created_at": at,
            }
        )
        at = at + wait
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.insert().values(
                request_id=request_id,
                event=event,
                endpoint=endpoint,
                url=ENDPOINTS[endpoint],
                status=status,
                attempts=tries,
                attempt_limit=8,
                last_http_status=attempts[-1]["http_status"],
                payload=body,
                created_at=created,
                updated_at=attempts[-1]["created_at"],
                next_attempt_at=attempts[-1]["next_attempt_at"] if status == "retrying" else None,
                reason=_reason(attempts[-1], tries) if status == "failed" else None,
                patient_key=runtime.keyring.index(str(rng.randint(10000, 99999))),
                encounter_key="-",
            )
        )
        conn.execute(store.ATTEMPTS.insert(), attempts)
        counts.add(conn, {status: 1})
        search.insert_keys(conn, [(request_id, search.business_keys(SEARCH_KEY, data))])
    return request_id


def _reason(last: dict[str, object], tries: int) -> str:
    """Why a delivery failed, as the retry policy words it."""
    cause = f"HTTP {last['http_status']}" if last["http_status"] else str(last["failure"])
    return f"{cause}; attempts exhausted ({tries} of {tries})"


def fill(runtime: Runtime) -> str:
    """A day of made-up traffic; the request id of a failed delivery to photograph."""
    rng = random.Random(16)
    now = datetime.now(UTC).replace(microsecond=0)
    failed = ""
    for i in range(400):
        created = now - timedelta(minutes=3.6 * i + rng.random())
        endpoint = rng.choice(list(ENDPOINTS))
        roll = rng.random()
        status = (
            "failed"
            if (endpoint == "quest-lab-orders" and roll < 0.25) or roll < 0.03
            else "retrying"
            if roll < 0.06
            else "delivered"
        )
        if status == "failed" and created > now - timedelta(hours=1):  # its eight attempts are not over yet
            status = "retrying"
        request_id = _delivery(runtime, rng, created, status, endpoint, rng.choice(EVENT_NAMES))
        if status == "failed" and i > 3 and not failed:
            failed = request_id
    store.disable(runtime.engine, "care-coordination", "410 Gone from the partner")
    _pause_and_break(runtime)
    _audit(runtime, now)
    return failed


def _pause_and_break(runtime: Runtime) -> None:
    """One endpoint paused by an operator, and quest-lab-orders' circuit breaker open (its
    attempts failing), so the endpoints page shows both."""
    for name in ENDPOINTS:
        runtime.redis.delete(breaker.state_key(name), breaker.window_key(name))
    endpoint_admin.Pause("northside-pharmacy").carry_out(runtime, Actor.console("dana.support"))
    settings = BreakerSettings()
    for _ in range(settings.min_attempts):
        breaker.record(runtime.redis, "quest-lab-orders", settings, Sample.FAILED)


def _audit(runtime: Runtime, now: datetime) -> None:
    """Audit rows as the doors write them: the console's operator and the CLI's OS user."""
    rows = [
        (now - timedelta(hours=20), "ops", AuditAction.RETENTION_RUN, {"payload_days": 30, "rows_days": 365},
         {"erased": 1840, "deleted": 0, "attempts_erased": 2210}),
        (now - timedelta(hours=6), "dana.support", AuditAction.ENDPOINTS_DISABLE,
         {"endpoint": "care-coordination", "reason": "410 Gone from the partner", "via": "console"}, {"changed": 1}),
        (now - timedelta(hours=3), "dana.support", AuditAction.DELIVERY_REVEAL,
         {"request_id": "0b7c2f4e-5a1d-4c8e-9f3a-6d2e8b1c4a70", "via": "console"}, {}),
        (now - timedelta(hours=2), "dana.support", AuditAction.RETRY,
         {"endpoint": "quest-lab-orders", "event": "order_changed", "since": now - timedelta(days=1),
          "statuses": ["failed"], "with_payload": True, "via": "console"},
         {"matched": 12, "requeued": 12, "awaiting_reconcile": 0, "skipped_endpoint_disabled": 0}),
        (now - timedelta(minutes=40), "ops", AuditAction.LOG_EXPORT,
         {"rows": "deliveries", "format": "csv", "since": now - timedelta(days=7)}, {"rows": 2716}),
        (now - timedelta(minutes=5), "dana.support", AuditAction.REPLAY,
         {"endpoint": "northside-pharmacy", "since": now - timedelta(hours=4), "until": now - timedelta(hours=1),
          "via": "console"}, {"matched": 57, "replayed": 57, "skipped": 0, "held_back": 0}),
    ]  # fmt: skip
    for at, actor, action, selection, done in rows:
        audit.record(runtime.engine, actor, action, selection, done, at=at)


def serve(app: object, port: int) -> None:
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)


def main() -> None:
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        raw = {
            "environment": "staging",
            "redis_url": os.environ.get("SCREENSHOTS_REDIS_URL", "redis://127.0.0.1:6379/14"),
            "database_url": f"sqlite:///{tmp}/webhooks.db",
            "process_log": f"{tmp}/process.log",
            "endpoints": [{"name": name, "url": url} for name, url in ENDPOINTS.items()],
            "search_key": SEARCH_KEY,
            "console": {
                "users": [
                    {"name": "dana.support", "password_hash": hash_password(PASSWORD), "role": "operator"}
                ]
            },
        }
        runtime = Runtime(parse_settings(raw, env={}))
        failed = fill(runtime)
        port = free_port()
        serve(create_app(runtime), port)
        base = f"http://127.0.0.1:{port}"
        with chromium(WIDTH, HEIGHT) as driver:
            driver.get(f"{base}/login")
            driver.find_element(By.ID, "name").send_keys("dana.support")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.ID, "sign-in").click()
            while not driver.current_url.endswith("/deliveries"):  # signed in: the session is set
                time.sleep(0.05)
            for name, path in (
                ("deliveries", "/deliveries?since=1d&status=failed"),
                ("delivery", f"/deliveries/{failed}"),
                ("endpoints", "/endpoints"),
                ("audit", "/audit"),
            ):
                driver.get(f"{base}{path}")
                driver.save_screenshot(str(ROOT / "docs" / f"console-{name}.png"))
        for name in ENDPOINTS:  # the breaker's keys do not outlive the pictures
            runtime.redis.delete(breaker.state_key(name), breaker.window_key(name))
        runtime.close()
    print(
        "docs/console-deliveries.png, docs/console-delivery.png, docs/console-endpoints.png, docs/console-audit.png"
    )


if __name__ == "__main__":
    main()
