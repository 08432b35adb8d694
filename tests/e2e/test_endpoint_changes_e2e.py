"""Endpoint changes made with the real ``dispatcher`` command while two real ``worker.py``
processes run, against the real Redis, SQLite and real receivers on 127.0.0.1: an endpoint
added, a URL changed, an endpoint paused (a delivery waits, no attempt used) and resumed, a
signing secret rotated -- each taken by the running workers without a restart.

Each step measures the time from the command's exit to the first delivery that shows the change
(events are dispatched every fifth of a second meanwhile) and prints it (run with ``-s``); the
assertion is only that the change was taken, within a generous bound."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dispatcher import dispatch, queue, store
from dispatcher.contract import catalogue as events
from dispatcher.contract.signing import decode_secret, generate_secret, signature_headers
from dispatcher.vocabulary import DeliveryStatus
from tests.conftest import ROOT, wait_for
from tests.servers import ScriptedReceiver

ORDER = events.CATALOGUE["order_changed"].example()
KEY = "e2e-endpoint-changes-key-123"
TAKEN_WITHIN = 30.0
"""Generous: the issue asks for 5 seconds, and the printed times say what it took."""
PACE = 0.2
OLD_SECRET = generate_secret()


def command(config: Path, *args: str) -> tuple[float, str]:
    """Runs ``dispatcher ARGS`` (the installed console script) with ``config``; the time it
    exited, and what it printed."""
    environ = {**os.environ, "DISPATCHER_CONFIG": str(config), "PARTNER_KEY": KEY}
    environ.pop("DISPATCHER_REDIS_URL", None)
    environ.pop("DISPATCHER_DATABASE_URL", None)
    script = Path(sys.executable).parent / "dispatcher"
    done = subprocess.run(
        [str(script), *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    exited = time.time()
    assert done.returncode == 0, done.stderr
    return exited, done.stdout


def until(runtime, endpoint: str, shown: Callable[[list[str]], Any], what: str) -> Any:
    """Dispatches an event to ``endpoint`` every :data:`PACE` seconds until ``shown(ids so far)``
    finds the change in what the partner received (or in the log); returns what it found."""
    ids: list[str] = []
    deadline = time.monotonic() + TAKEN_WITHIN
    while time.monotonic() < deadline:
        runtime.refresh_endpoints(force=True)
        ids += dispatch("order_changed", ORDER, endpoints=[endpoint])
        found = shown(ids)
        if found:
            return found
        time.sleep(PACE)
    pytest.fail(f"not taken within {TAKEN_WITHIN}s: {what}")


def first_at(server: ScriptedReceiver, ids: list[str], test: Callable[[Any], bool] = lambda got: True) -> Any:
    """The first request ``server`` received of ``ids`` that passes ``test``."""
    wanted = set(ids)
    with server.lock:
        return next((got for got in server.received if got.request_id in wanted and test(got)), None)


def signed_twice(got: Any) -> bool:
    return str(got.headers.get("webhook-signature", "")).count("v1,") == 2


def signed(got: Any, secret: str) -> str:
    """The ``v1,`` signature ``secret`` makes of a received request."""
    headers = signature_headers(
        got.headers["webhook-id"], int(got.headers["webhook-timestamp"]), got.raw, [decode_secret(secret)]
    )
    return headers["webhook-signature"]


def failed_reasons(runtime) -> list[str]:
    rows = store.list_deliveries(runtime.engine, store.Selection(statuses=("failed",)), limit=20)
    reasons = [store.get_delivery(runtime.engine, row["request_id"])["reason"] for row in rows]
    return [f"{row['endpoint']}: {reason}" for row, reason in zip(rows, reasons, strict=True)]


def held_back(runtime, ids: list[str]) -> tuple[str, float] | None:
    """A delivery among ``ids`` that a worker gave back unsent (paused): queued, no attempt,
    its job scheduled for later; with the time it was seen so."""
    for request_id in ids:
        delivery = store.get_delivery(runtime.engine, request_id)
        state, _worker = queue.job_state(runtime.queue, request_id)
        if delivery["status"] == DeliveryStatus.QUEUED and delivery["attempts"] == 0 and state == "scheduled":
            return request_id, time.time()
    return None


def test_changes_made_with_the_cli_reach_two_running_workers(
    make_runtime, write_config, start_worker, receiver
) -> None:
    second = ScriptedReceiver()
    partner_a = {
        "name": "partner-a",
        "url": receiver.url,
        "key": KEY,
        "events": ["order_changed"],
        "signing_secret": OLD_SECRET,
    }
    runtime = make_runtime(endpoints=[partner_a])
    config = write_config(endpoints=[partner_a])
    start_worker(config), start_worker(config)
    warm = [dispatch("order_changed", ORDER)[0] for _ in range(4)]
    for request_id in warm:
        wait_for(lambda r=request_id: receiver.for_request(r), message="the workers to deliver")
    times: dict[str, float] = {}
    try:
        exited, _ = command(
            config, "endpoints", "add", "partner-b", "--url", second.url, "--key-env", "PARTNER_KEY"
        )
        got = until(runtime, "partner-b", lambda ids: first_at(second, ids), "the added endpoint")
        times["add"] = got.at - exited
        assert got.headers["X-Webhook-Key"] == KEY

        exited, _ = command(config, "endpoints", "edit", "partner-a", "--url", second.url)
        got = until(runtime, "partner-a", lambda ids: first_at(second, ids), "the new URL")
        times["edit --url"] = got.at - exited

        exited, _ = command(config, "endpoints", "pause", "partner-a")
        request_id, seen = until(runtime, "partner-a", lambda ids: held_back(runtime, ids), "the pause")
        times["pause"] = seen - exited
        assert store.list_attempts(runtime.engine, request_id) == [] and not second.for_request(request_id)

        exited, _ = command(config, "endpoints", "resume", "partner-a")
        got = wait_for(lambda: second.for_request(request_id), timeout=TAKEN_WITHIN, message="the resume")[0]
        times["resume"] = got.at - exited
        delivery = wait_for(
            lambda: (
                store.get_delivery(runtime.engine, request_id)["status"] == "delivered"
                and store.get_delivery(runtime.engine, request_id)
            )
        )
        assert delivery["attempts"] == 1

        exited, said = command(config, "endpoints", "rotate-secret", "partner-a", "--grace", "1h")
        secret = said.splitlines()[0].rsplit(" ", 1)[1]
        got = until(
            runtime, "partner-a", lambda ids: first_at(second, ids, signed_twice), "the new signing secret"
        )
        times["rotate-secret"] = got.at - exited
        assert got.headers["webhook-signature"] == " ".join(signed(got, s) for s in (secret, OLD_SECRET))
        # No delivery was lost on the way: one to a just-added endpoint taken by a worker that
        # had not looked at the endpoints since is not failed as "no longer configured".
        assert store.count_by_status(runtime.engine, store.Selection()).get("failed", 0) == 0, failed_reasons(
            runtime
        )
    finally:
        second.close()
        print("\napply times, from the command's exit to the first delivery showing the change")
        print("(resume sends the waiting deliveries on itself, so they may arrive before it exits):")
        for step, seconds in times.items():
            print(f"  {step:<14} {seconds:6.2f} s")
