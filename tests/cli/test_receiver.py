"""``dispatcher receiver``, the reference partner endpoint, as a real process on 127.0.0.1: it
checks the key (and with ``--signing-secret`` the signature), takes each request_id once, prints
one line per event it takes and per request it refuses (why, never the key sent), and stops on
Ctrl-C. A bad secret is a usage error (click's runner)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from dispatcher.contract.signing import decode_secret, generate_secret, signature_headers
from tests.cli.helpers import invoke
from tests.conftest import ROOT

KEY = "k-receiver-1"


class Receiver:
    """``python -m dispatcher receiver --port 0 ARGS``; ``url`` is where it says it listens."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "receiver", "--port", "0", "--key", KEY, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        first = self.process.stderr.readline()  # blocks until it listens (or dies: an empty line)
        found = re.match(r"receiving on (http://127\.0\.0\.1:\d+/) \(any path\); Ctrl-C stops$", first)
        assert found, first
        self.url = found.group(1) + "webhooks/baremeds"

    def post(self, body: dict, **headers: str) -> httpx.Response:
        return httpx.post(self.url, content=json.dumps(body).encode(), headers=headers, timeout=10)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C; its exit code and everything it printed on stdout."""
        self.process.send_signal(signal.SIGINT)
        stdout, _ = self.process.communicate(timeout=10)
        return self.process.returncode, stdout


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(*args: str) -> Receiver:
        started.append(Receiver(*args))
        return started[-1]

    yield start
    for receiver in started:
        if receiver.process.poll() is None:
            receiver.process.kill()
            receiver.process.communicate()


def webhook(request_id: str, event: str = "order_changed", retry: bool = False) -> dict:
    return {"event": event, "data": {}, "metadata": {"request_id": request_id, "retry": retry}}


def test_it_checks_the_key_takes_each_request_once_and_prints_what_it_took(start_receiver) -> None:
    receiver = start_receiver()
    first = "00000000-0000-4000-8000-000000000001"

    assert receiver.post(webhook(first)).status_code == 401
    assert receiver.post(webhook(first), **{"X-Webhook-Key": "wrong"}).status_code == 401
    taken = receiver.post(webhook(first), **{"X-Webhook-Key": KEY})
    assert (taken.status_code, taken.json()) == (200, {"status": "received", "request_id": first})
    again = receiver.post(webhook(first, retry=True), **{"X-Webhook-Key": KEY})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "request_id": first})
    assert receiver.post({"not": "a webhook"}, **{"X-Webhook-Key": KEY}).status_code == 400

    code, printed = receiver.stop()
    assert code == 0
    wrong_key = "answered 401: the X-Webhook-Key is not the one this receiver accepts"
    assert printed.splitlines() == [wrong_key, wrong_key, f"{'order_changed':<28} {first}  retry=false"]
    assert "wrong" not in printed  # what a sender sent as its key is never printed


def test_with_a_signing_secret_it_takes_only_signed_requests(start_receiver) -> None:
    secret = generate_secret()
    receiver = start_receiver("--signing-secret", secret)
    request_id = "00000000-0000-4000-8000-000000000002"
    body = webhook(request_id, "message_created")
    raw = json.dumps(body).encode()

    unsigned = receiver.post(body, **{"X-Webhook-Key": KEY})
    assert (unsigned.status_code, unsigned.json()) == (401, {"error": "invalid webhook-signature"})
    headers = signature_headers(request_id, int(time.time()), raw, [decode_secret(generate_secret())])
    assert receiver.post(body, **{"X-Webhook-Key": KEY, **headers}).status_code == 401  # another key
    headers = signature_headers(request_id, int(time.time()), raw, [decode_secret(secret)])
    assert receiver.post(body, **{"X-Webhook-Key": KEY, **headers}).status_code == 200

    code, printed = receiver.stop()
    unverified = "answered 401: the webhook-signature does not verify"
    assert code == 0
    assert printed.splitlines() == [
        unverified,
        unverified,
        f"{'message_created':<28} {request_id}  retry=false",
    ]


def test_a_signing_secret_that_is_not_whsec_is_a_usage_error() -> None:
    result = invoke("receiver", "--port", "0", "--signing-secret", "not-a-secret")
    assert result.exit_code == 2
    assert "--signing-secret" in result.stderr and "must start with 'whsec_'" in result.stderr
