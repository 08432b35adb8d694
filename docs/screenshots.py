"""Takes the README's screenshots of the operator console: docs/console-deliveries.png,
docs/console-delivery.png and docs/console-endpoints.png.

Fills a throwaway SQLite log with made-up deliveries (fake partners, fake patients), serves the
console with uvicorn on 127.0.0.1 and photographs it in headless Chromium, signed in as an
operator. Sessions live in Redis: it uses ``redis://127.0.0.1:6379/14`` (or
``$SCREENSHOTS_REDIS_URL``), where its one session expires like any other. Run from the repository:
``.venv/bin/python docs/screenshots.py``.
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
from dispatcher.config import parse_settings  # noqa: E402
from dispatcher.console.app import create_app  # noqa: E402
from dispatcher.console.auth import hash_password  # noqa: E402
from dispatcher.contract import catalogue, wrapper  # noqa: E402
from dispatcher.contract.validation import validate  # noqa: E402
from dispatcher.runtime import Runtime  # noqa: E402
from dispatcher.store import counts  # noqa: E402
from dispatcher.vocabulary import EVENT_NAMES  # noqa: E402
from tests.console.browser import chromium, free_port  # noqa: E402

ENDPOINTS = {
    "northside-pharmacy": "https://rx.northside-pharmacy.example/webhooks/baremeds",
    "quest-lab-orders": "https://hooks.lab-orders.example/v2/baremeds",
    "care-coordination": "https://care.example.org/inbound/baremeds",
}
ERRORS = [
    "HTTP 503 Service Unavailable",
    "read timeout after 30 s",
    "HTTP 502 Bad Gateway",
    "connection refused",
]
PASSWORD = "screenshot-pass"


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
                "failure": None if http else "timeout" if "timeout" in (error or "") else "connection_error",
                "duration_ms": rng.randint(80, 900) if http else 30000 if "timeout" in (error or "") else 3,
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
                reason="attempts exhausted" if status == "failed" else None,
                patient_key=runtime.keyring.index(str(rng.randint(10000, 99999))),
                encounter_key="-",
            )
        )
        conn.execute(store.ATTEMPTS.insert(), attempts)
        counts.add(conn, {status: 1})
    return request_id


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
    return failed


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
        with chromium(1400, 980) as driver:
            driver.get(f"{base}/login")
            driver.find_element(By.ID, "name").send_keys("dana.support")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.ID, "sign-in").click()
            driver.get(f"{base}/deliveries?since=1d")
            driver.save_screenshot(str(ROOT / "docs" / "console-deliveries.png"))
            driver.get(f"{base}/deliveries/{failed}")
            driver.save_screenshot(str(ROOT / "docs" / "console-delivery.png"))
            driver.get(f"{base}/endpoints")
            driver.save_screenshot(str(ROOT / "docs" / "console-endpoints.png"))
        runtime.close()
    print("docs/console-deliveries.png, docs/console-delivery.png, docs/console-endpoints.png")


if __name__ == "__main__":
    main()
