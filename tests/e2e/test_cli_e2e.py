"""The real `dispatcher` CLI (subprocesses) against the real Redis, a real worker and a real receiver."""

from __future__ import annotations

import json

from dispatcher import store
from dispatcher.contract import catalogue as events
from tests.cli.helpers import run_cli, sent_ids
from tests.conftest import wait_for
from tests.servers import Answer

KEY = "cli-partner-key-456"


def status_of(runtime, request_id: str) -> str | None:
    row = store.get_delivery(runtime.engine, request_id)
    return row["status"] if row else None


def test_send_list_show_the_six_seed_events(make_runtime, write_config, start_worker, receiver, tmp_path):
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    start_worker(config)
    request_ids = []
    for name in events.EVENT_NAMES:
        data_file = tmp_path / f"{name}.json"
        data_file.write_text(run_cli(config, "sample", name).stdout)
        header, *rows = run_cli(
            config, "send", name, "--data", f"@{data_file}", "--dispatched-by", "cli-test"
        ).stdout.splitlines()
        assert header.split() == ["endpoint", "request_id"] and len(rows) == 1
        assert rows[0].split()[0] == "partner-a"
        request_ids.append(rows[0].split()[1])
    for rid in request_ids:
        wait_for(
            lambda rid=rid: status_of(runtime, rid) == "delivered", timeout=30, message=f"{rid} delivered"
        )

    listed = json.loads(run_cli(config, "log", "list", "--json").stdout)
    assert [d["request_id"] for d in listed] == list(reversed(request_ids))  # newest first
    assert set(listed[0]) >= {
        "request_id",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_http_status",
        "created_at",
        "updated_at",
    }
    assert {d["status"] for d in listed} == {"delivered"}
    only = json.loads(run_cli(config, "log", "list", "--event", "order_changed", "--json").stdout)
    assert [d["event"] for d in only] == ["order_changed"]

    shown = json.loads(run_cli(config, "log", "show", request_ids[0], "--json").stdout)
    assert shown["request_id"] == request_ids[0] and shown["event"] == "prescription_submitted"
    (attempt,) = shown["attempts"]
    assert set(attempt) >= {
        "attempt",
        "retry",
        "outcome",
        "http_status",
        "error",
        "duration_ms",
        "response_body",
        "next_attempt_at",
        "created_at",
    }
    assert (
        attempt["outcome"] == "delivered"
        and attempt["retry"] is False
        and attempt["created_at"].endswith("Z")
    )
    assert shown["payload"]["metadata"]["dispatched_by"] == "cli-test"

    table = run_cli(config, "log", "list").stdout
    assert request_ids[0] in table and all(len(line) < 400 for line in table.splitlines())
    readable = run_cli(config, "log", "show", request_ids[0]).stdout
    assert "delivered" in readable and '"patient_id": "patient_unique_id"' in readable
    assert KEY not in table + readable


def test_unknown_id_and_bad_input_are_one_line_errors(write_config, receiver, redis_url):
    config = write_config(endpoints=[{"name": "partner-a", "url": receiver.url, "key": KEY}])
    missing = run_cli(config, "log", "show", "00000000-0000-4000-8000-000000000000", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "no delivery" in missing.stderr
    bad = run_cli(config, "send", "order_changed", "--data", '{"order_number": 5}', check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "order_number" in bad.stderr and "status: required field is missing" in bad.stderr
    assert receiver.received == []


def test_unreachable_redis_names_the_url(write_config, receiver, tmp_path):
    config = write_config(
        endpoints=[{"name": "partner-a", "url": receiver.url}], redis_url="redis://127.0.0.1:1/0"
    )
    result = run_cli(config, "retry", "00000000-0000-4000-8000-000000000000", check=False)
    assert result.returncode != 0
    sent = run_cli(config, "reconcile", check=False)
    assert sent.returncode == 1 and "redis://127.0.0.1:1/0" in sent.stderr and "Traceback" not in sent.stderr


def test_retry_re_delivers_a_failed_delivery_with_continuing_attempts(
    make_runtime, write_config, start_worker, receiver
):
    receiver.script_all(Answer(status=400), 200)
    ep = {"name": "partner-a", "url": receiver.url, "key": KEY}
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    start_worker(config)
    (request_id,) = sent_ids(run_cli(config, "send", "order_changed", "--sample", "--json").stdout)
    wait_for(
        lambda: status_of(runtime, request_id) == "failed", timeout=30, message="the 400 to fail the delivery"
    )

    assert "re-queued" in run_cli(config, "retry", request_id).stdout
    wait_for(
        lambda: status_of(runtime, request_id) == "delivered", timeout=30, message="the retry to deliver"
    )
    refused = run_cli(config, "retry", request_id, check=False)
    assert refused.returncode == 1 and "left alone, its status is delivered" in refused.stderr
    got = receiver.for_request(request_id)
    assert [g.body["metadata"]["retry"] for g in got] == [False, True]
    assert {g.body["metadata"]["request_id"] for g in got} == {request_id}
    attempts = store.list_attempts(runtime.engine, request_id)
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "failed"), (2, "delivered")]
    row = store.get_delivery(runtime.engine, request_id)
    assert row["attempt_limit"] == 1 + runtime.settings.delivery.max_attempts
