"""Signatures and the destination guard through a real worker and a real receiver."""

from __future__ import annotations

from pathlib import Path

import yaml
from standardwebhooks import Webhook

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.contract.signing import generate_secret
from dispatcher.vocabulary import FINAL_STATUSES
from tests.conftest import wait_for


def final(runtime, request_id):
    row = store.get_delivery(runtime.engine, request_id)
    return row if row and row["status"] in FINAL_STATUSES else None


def test_signed_deliveries_verify_with_standardwebhooks_and_secrets_stay_hidden(
    make_runtime, write_config, start_worker, receiver, tmp_path: Path
):
    old, new = generate_secret(), generate_secret()
    ep = {"name": "partner-a", "url": receiver.url, "key": "key-789", "signing_secret": [old, new]}
    runtime = make_runtime(endpoints=[ep])
    worker = start_worker(write_config(endpoints=[ep]))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    wait_for(lambda: final(runtime, request_id), timeout=30, message="delivery")
    (got,) = receiver.for_request(request_id)
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == request_id
    assert headers["x-webhook-key"] == "key-789"
    for secret in (old, new):
        assert Webhook(secret).verify(got.raw, headers)["metadata"]["request_id"] == request_id
    worker.stop()
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log") if not p.is_symlink())
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    for secret in (old, new, old[6:], "key-789"):
        assert secret not in logs
        assert secret not in attempt["request_headers"]


def test_a_loopback_endpoint_is_refused_without_allow_networks(
    make_runtime, write_config, start_worker, receiver, tmp_path
):
    ep = {"name": "partner-a", "url": receiver.url, "key": "key-789"}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    raw = yaml.safe_load(config.read_text())
    raw.pop("allow_networks")
    config.write_text(yaml.safe_dump(raw))
    start_worker(config)
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    row = wait_for(lambda: final(runtime, request_id), timeout=30, message="the refusal")
    assert row["status"] == "failed" and row["attempts"] == 1
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "failed" and "allow_networks" in attempt["error"]
    assert receiver.received == []
