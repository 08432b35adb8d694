"""The HTTP API as a client in another language meets it: ``dispatcher api`` served by real
uvicorn in its own process, tokens made and revoked with the real ``dispatcher`` command, events
sent with curl, a real ``worker.py`` delivering to a real receiver, on real Redis and
PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from dispatcher.contract import catalogue as events
from tests.conftest import ROOT, wait_for
from tests.console.browser import free_port
from tests.servers import ScriptedReceiver

ORDER = events.CATALOGUE["order_changed"].example()
SCRIPT = Path(sys.executable).parent / "dispatcher"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def environ(config: Path) -> dict[str, str]:
    env = {**os.environ, "DISPATCHER_CONFIG": str(config)}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    return env


def command(config: Path, *args: str) -> str:
    """``dispatcher ARGS`` with ``config``: what it printed on stdout."""
    done = subprocess.run(
        [str(SCRIPT), *args], cwd=ROOT, env=environ(config), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def curl(
    method: str, url: str, token: str | None, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One request with curl: status, headers (lower-case names) and the JSON answer."""
    args = ["curl", "-sS", "-X", method, "-D", "-", "-H", "Expect:", url]
    if token:
        args += ["-H", f"Authorization: Bearer {token}"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    head, _, text = out.partition("\n\n")  # text mode: curl's CRLF read as \n
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    found = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, found, json.loads(text) if text else None


@pytest.fixture
def served(
    write_config: Callable[..., Path], pg_url: str, receiver: ScriptedReceiver, tmp_path: Path
) -> Iterator[tuple[Path, str]]:
    """A config on PostgreSQL with one endpoint (the receiver), and ``dispatcher api`` serving it
    with two uvicorn workers; the config and the API's base URL."""
    config = write_config(
        database_url=pg_url,
        endpoints=[{"name": "partner", "url": receiver.url, "events": ["order_changed"]}],
    )
    command(config, "db", "upgrade")
    port = free_port()
    log = open(tmp_path / "api.out", "wb")
    process = subprocess.Popen(
        [str(SCRIPT), "api", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=environ(config),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base), timeout=30, message="dispatcher api to answer")
        yield config, base
    finally:
        process.terminate()
        process.wait(30)
        log.close()
        output = (tmp_path / "api.out").read_text(errors="replace")
        assert "Traceback" not in output, output


def _up(base: str) -> bool:
    try:
        return curl("GET", f"{base}/v1/health", None)[0] in (200, 503)
    except subprocess.CalledProcessError:
        return False


def test_an_event_sent_with_curl_reaches_the_partner_through_a_worker(
    served: tuple[Path, str], receiver: ScriptedReceiver, start_worker: Callable[..., Any], tmp_path: Path
) -> None:
    config, base = served
    token = command(config, "api", "tokens", "create", "e2e-sender", "--scopes", "send,read").strip()
    start_worker(config)
    status, _, answer = curl("POST", f"{base}/v1/events", token, {"event": "order_changed", "data": ORDER})
    assert status == 202
    (delivery,) = answer["deliveries"]
    wait_for(
        lambda: delivery["request_id"] in receiver.request_ids(),
        timeout=60,
        message="the partner to receive it",
    )
    (got,) = receiver.for_request(delivery["request_id"])
    assert got.body is not None and got.body["data"] == json.loads(json.dumps(ORDER))
    wait_for(
        lambda: (
            curl("GET", f"{base}/v1/deliveries/{delivery['request_id']}", token)[2]["status"] == "delivered"
        ),
        timeout=30,
        message="the delivery to be recorded delivered",
    )
    logged = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*"))
    logged += (tmp_path / "api.out").read_text(errors="replace")
    assert delivery["request_id"] in logged  # the process log has the delivery...
    assert token not in logged  # ...never the token
    assert str(ORDER["order_number"]) not in logged  # ...nor the event's data


def test_twenty_concurrent_identical_requests_make_one_set_of_deliveries(
    served: tuple[Path, str], pg_url: str
) -> None:
    config, base = served
    token = command(config, "api", "tokens", "create", "e2e-burst", "--scopes", "send").strip()
    body = {"event": "order_changed", "data": ORDER}
    start = threading.Barrier(20)
    answers: list[tuple[int, dict[str, str], Any]] = []
    lock = threading.Lock()

    def send() -> None:
        start.wait()
        answer = curl("POST", f"{base}/v1/events", token, body, {"Idempotency-Key": "burst-1"})
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads) and len(answers) == 20
    statuses = sorted(a[0] for a in answers)
    assert set(statuses) <= {202, 409} and 202 in statuses, statuses
    accepted = {json.dumps(a[2], sort_keys=True) for a in answers if a[0] == 202}
    assert len(accepted) == 1  # every 202 carries the same deliveries
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select request_id from webhook_deliveries")).scalars().all()
    engine.dispose()
    assert sorted(stored) == sorted(d["request_id"] for d in json.loads(accepted.pop())["deliveries"])
    print(
        f"\n20 concurrent requests with one Idempotency-Key: {statuses.count(202)} x 202, {statuses.count(409)} x 409"
    )


def test_a_revoked_token_is_refused_at_once(served: tuple[Path, str]) -> None:
    config, base = served
    token = command(config, "api", "tokens", "create", "e2e-revoked", "--scopes", "read").strip()
    for _ in range(4):  # on new connections: either worker may answer
        assert curl("GET", f"{base}/v1/endpoints", token)[0] == 200
    command(config, "api", "tokens", "revoke", "e2e-revoked")
    statuses = [curl("GET", f"{base}/v1/endpoints", token)[0] for _ in range(4)]
    assert statuses == [401] * 4
