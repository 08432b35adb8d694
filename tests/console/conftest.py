"""Fixtures for the console: a runtime with console users, a signed-in test client per role,
and deliveries stored with their attempts as a worker would leave them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from dispatcher import store
from dispatcher.console.app import create_app
from dispatcher.console.auth import hash_password
from dispatcher.contract import catalogue as events
from dispatcher.contract import wrapper as payload
from dispatcher.contract.validation import validate
from dispatcher.runtime import Runtime
from dispatcher.times import utcnow

PASSWORDS = {"olivia": "operator-pass-1", "victor": "viewer-pass-1"}
_HASHES: dict[str, str] = {}
SECRET_PATIENT = "PATIENT-7731-SECRET"
SECRET_ENCOUNTER = "ENC-55102-SECRET"
SECRET_ANSWER = "answer-body-with-PHI-9931"
ENDPOINT_KEY = "endpoint-key-do-not-show-4242"
SESSION_SECRET = "s" * 16 + "-console-test-secret-0123456789"


def password_hashes() -> dict[str, str]:
    if not _HASHES:
        _HASHES.update({name: hash_password(pw) for name, pw in PASSWORDS.items()})
    return _HASHES


def console_section(**extra: Any) -> dict[str, Any]:
    hashes = password_hashes()
    return {
        "users": [
            {"name": "olivia", "password_hash": hashes["olivia"], "role": "operator"},
            {"name": "victor", "password_hash": hashes["victor"], "role": "viewer"},
        ],
        "session_secret": SESSION_SECRET,
        # Starlette's test client says Host: testserver; a served console is reached at 127.0.0.1.
        "allowed_hosts": ["testserver", "localhost", "127.0.0.1"],
        **extra,
    }


def endpoints(url: str = "http://127.0.0.1:9/hook") -> list[dict[str, Any]]:
    return [
        {"name": "pharmacy", "url": url, "key": ENDPOINT_KEY},
        {"name": "lab", "url": "http://127.0.0.1:9/lab"},
    ]


def wrapper(request_id: str, event: str, data: dict[str, Any]) -> str:
    return payload.dumps(
        payload.build(
            event=event,
            timestamp="2026-01-30T12:00:00Z",
            data=validate(event, data),
            source="Baremeds",
            environment="test",
            request_id=request_id,
            dispatched_by="SEED",
        )
    )


def seed(
    runtime: Runtime,
    *,
    status: str = "failed",
    endpoint: str = "pharmacy",
    event: str = "prescription_submitted",
    created_at: datetime | None = None,
    patient_id: str = SECRET_PATIENT,
    encounter_id: str = SECRET_ENCOUNTER,
    answer: str | None = SECRET_ANSWER,
) -> str:
    """One delivery with one attempt, stored as a worker leaves it; its request id."""
    request_id = str(uuid.uuid4())
    data = {**events.get_event(event).example(), "patient_id": patient_id, "encounter_id": encounter_id}
    created = created_at or utcnow()
    keyring = runtime.keyring
    with runtime.engine.begin() as conn:
        conn.execute(
            store.DELIVERIES.insert().values(
                request_id=request_id,
                event=event,
                endpoint=endpoint,
                url="http://127.0.0.1:9/hook",
                status=status,
                attempts=1,
                attempt_limit=5,
                last_http_status=500 if status == "failed" else 200,
                payload=wrapper(request_id, event, data),
                created_at=created - timedelta(seconds=1),
                updated_at=created,
                patient_key=keyring.index(patient_id),
                encounter_key=keyring.index(encounter_id),
            )
        )
        conn.execute(
            store.ATTEMPTS.insert().values(
                request_id=request_id,
                event=event,
                endpoint=endpoint,
                url="http://127.0.0.1:9/hook",
                attempt=1,
                retry=False,
                outcome="failed" if status == "failed" else "delivered",
                http_status=500 if status == "failed" else 200,
                error="HTTP 500" if status == "failed" else None,
                response_body=answer,
                duration_ms=42,
                created_at=created,
            )
        )
    return request_id


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str | None = None) -> Any:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"name": name, "password": password or PASSWORDS[name], "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )


@pytest.fixture
def console_runtime(make_runtime: Callable[..., Runtime]) -> Callable[..., Runtime]:
    def make(**console: Any) -> Runtime:
        return make_runtime(endpoints=endpoints(), console=console_section(**console))

    return make


@pytest.fixture
def runtime(console_runtime: Callable[..., Runtime]) -> Runtime:
    return console_runtime()


@pytest.fixture
def client_for(runtime: Runtime) -> Iterator[Callable[..., TestClient]]:
    """A client signed in as ``name`` (None: not signed in), all over one app."""
    app = create_app(runtime)
    clients: list[TestClient] = []

    def make(name: str | None = None, **options: Any) -> TestClient:
        client = TestClient(app, **options)
        clients.append(client)
        if name:
            assert sign_in(client, name).status_code == 303
        return client

    yield make
    for client in clients:
        client.close()
