"""End to end through real `python worker.py` processes, the real Redis, SQLite and a real
HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatcher import dispatch, store
from dispatcher.contract import catalogue as events
from dispatcher.vocabulary import FINAL_STATUSES
from tests.cli.helpers import run_cli
from tests.conftest import ROOT, wait_for
from tests.servers import Answer

KEY = "partner-secret-key-123"


def final(runtime, request_id: str) -> dict | None:
    row = store.get_delivery(runtime.engine, request_id)
    return row if row and row["status"] in FINAL_STATUSES else None


def wait_final(runtime, request_ids, timeout: float = 40) -> list[dict]:
    return [
        wait_for(lambda rid=rid: final(runtime, rid), timeout=timeout, message=f"delivery {rid} to finish")
        for rid in request_ids
    ]


def endpoint(receiver, **extra) -> dict:
    return {"name": "partner-a", "url": receiver.url, "key": KEY, **extra}


def test_six_seed_examples_delivered_field_by_field(make_runtime, write_config, start_worker, receiver):
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(write_config(endpoints=[endpoint(receiver)]))
    sent = {}
    for name, spec in events.CATALOGUE.items():
        (request_id,) = dispatch(name, spec.example(), dispatched_by="e2e")
        sent[request_id] = name
    rows = wait_final(runtime, list(sent))
    assert {r["status"] for r in rows} == {"delivered"}
    for request_id, name in sent.items():
        (got,) = receiver.for_request(request_id)
        assert got.headers["X-Webhook-Key"] == KEY
        assert got.headers["Content-Type"] == "application/json"
        assert got.headers["User-Agent"].startswith("Baremeds-Webhook-Dispatcher/")
        body = got.body
        assert list(body) == ["event", "timestamp", "data", "metadata"]
        assert body["event"] == name
        assert body["data"] == events.CATALOGUE[name].example()
        assert body["timestamp"].endswith("Z") and len(body["timestamp"]) == 20
        assert body["metadata"] == {
            "source": "Baremeds",
            "environment": "test",
            "webhook_version": "v1.0",
            "request_id": request_id,
            "dispatched_by": "e2e",
            "retry": False,
        }
        (attempt,) = store.list_attempts(runtime.engine, request_id)
        assert attempt["outcome"] == "delivered" and attempt["http_status"] == 200
        assert attempt["request_payload"].encode() == got.raw


def test_503_500_200_is_one_delivery_with_retry_flags(make_runtime, write_config, start_worker, receiver):
    receiver.script_all(503, 500, 200)
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(write_config(endpoints=[endpoint(receiver)]))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id])
    assert row["status"] == "delivered" and row["attempts"] == 3
    got = receiver.for_request(request_id)
    assert [g.body["metadata"]["retry"] for g in got] == [False, True, True]
    assert {g.body["metadata"]["request_id"] for g in got} == {request_id}
    assert len({g.body["timestamp"] for g in got}) == 1
    attempts = store.list_attempts(runtime.engine, request_id)
    assert [(a["attempt"], a["retry"], a["outcome"], a["http_status"]) for a in attempts] == [
        (1, False, "retry_scheduled", 503),
        (2, True, "retry_scheduled", 500),
        (3, True, "delivered", 200),
    ]
    # the wait between attempts is the policy's (backoff [1]): never shorter than a second
    assert got[1].at - got[0].at >= 1.0


def test_timeout_is_retried(make_runtime, write_config, start_worker, receiver):
    receiver.script_all(Answer(delay=2.5), 200)
    delivery = {"timeout": 1}
    runtime = make_runtime(endpoints=[endpoint(receiver)], delivery=delivery)
    start_worker(write_config(endpoints=[endpoint(receiver)], delivery=delivery))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id])
    assert row["status"] == "delivered"
    first, second = store.list_attempts(runtime.engine, request_id)
    assert first["outcome"] == "retry_scheduled" and first["http_status"] is None
    assert first["error"] == "no answer within 1 s" and first["failure"] == "timeout"
    assert second["outcome"] == "delivered"


def test_400_is_not_retried(make_runtime, write_config, start_worker, receiver):
    receiver.script_all(Answer(status=400, body=b'{"error":"bad"}'))
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(write_config(endpoints=[endpoint(receiver)]))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id])
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_http_status"] == 400
    time.sleep(2)  # a retry, were one scheduled, would have run by now
    assert len(receiver.for_request(request_id)) == 1
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "failed" and attempt["response_body"] == '{"error":"bad"}'


def test_429_retry_after_is_honoured(make_runtime, write_config, start_worker, receiver):
    receiver.script_all(Answer(status=429, headers={"Retry-After": "3"}), 200)
    delivery = {"backoff": [1, 10]}
    runtime = make_runtime(endpoints=[endpoint(receiver)], delivery=delivery)
    start_worker(write_config(endpoints=[endpoint(receiver)], delivery=delivery))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id])
    assert row["status"] == "delivered"
    first, second = receiver.for_request(request_id)
    assert second.at - first.at >= 3.0
    attempt = store.list_attempts(runtime.engine, request_id)[0]
    assert (attempt["next_attempt_at"] - attempt["created_at"]).total_seconds() >= 3


def test_attempts_exhausted_fail(make_runtime, write_config, start_worker, receiver):
    receiver.default = Answer(status=503)
    delivery = {"max_attempts": 3}
    runtime = make_runtime(endpoints=[endpoint(receiver)], delivery=delivery)
    start_worker(write_config(endpoints=[endpoint(receiver)], delivery=delivery))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id])
    assert row["status"] == "failed" and row["attempts"] == 3
    outcomes = [a["outcome"] for a in store.list_attempts(runtime.engine, request_id)]
    assert outcomes == ["retry_scheduled", "retry_scheduled", "failed"]
    assert len(receiver.for_request(request_id)) == 3


def test_no_key_sends_default_xxx_and_warns(
    make_runtime, write_config, start_worker, receiver, tmp_path: Path
):
    plain = {"name": "partner-a", "url": receiver.url}
    runtime = make_runtime(endpoints=[plain])
    worker = start_worker(write_config(endpoints=[plain]))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    wait_final(runtime, [request_id])
    (got,) = receiver.for_request(request_id)
    assert got.headers["X-Webhook-Key"] == "xxx"
    worker.stop()
    process_log = (tmp_path / "logs" / "send-webhook-request-process.log").read_text()
    assert "WARNING configuration warning" in process_log
    assert "uses the default key xxx; configure a unique key" in process_log
    assert "warning: endpoints[0].key: endpoint 'partner-a' uses the default key xxx" in worker.output()


def test_two_workers_deliver_each_exactly_once(make_runtime, write_config, start_worker, receiver):
    receiver.default = Answer(delay=0.02)
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    config = write_config(endpoints=[endpoint(receiver)])
    start_worker(config, name="w1")
    start_worker(config, name="w2")
    from dispatcher import dispatch_many

    request_ids = dispatch_many("order_changed", [events.CATALOGUE["order_changed"].example()] * 40)
    rows = wait_final(runtime, request_ids, timeout=60)
    assert {r["status"] for r in rows} == {"delivered"}
    counts = [len(receiver.for_request(rid)) for rid in request_ids]
    assert counts == [1] * 40
    assert receiver.overlaps == []
    workers = {
        store.list_attempts(runtime.engine, rid)[0]["request_headers"] is not None for rid in request_ids
    }
    assert workers == {True}


def test_process_log_has_failures_and_never_the_key_or_data(
    make_runtime, write_config, start_worker, receiver, tmp_path
):
    receiver.script_all(503, 200)
    ep = endpoint(receiver, include_key_in_body=True)
    runtime = make_runtime(endpoints=[ep])
    worker = start_worker(write_config(endpoints=[ep]))
    data = events.CATALOGUE["message_created"].example() | {"message": "PHI: patient has condition Z"}
    (request_id,) = dispatch("message_created", data)
    wait_final(runtime, [request_id])
    worker.stop()
    log_dir = tmp_path / "logs"
    text = "".join(p.read_text() for p in log_dir.glob("*.log") if not p.is_symlink())
    assert f"WARNING attempt request_id={request_id}" in text
    assert "outcome=retry_scheduled http_status=503" in text
    assert (
        f"INFO attempt request_id={request_id} event=message_created endpoint=partner-a attempt=2 outcome=delivered"
        in text
    )
    assert KEY not in text
    assert "PHI" not in text and "patient has condition" not in text
    # nor in the stored request headers / payload
    for attempt in store.list_attempts(runtime.engine, request_id):
        assert KEY not in attempt["request_headers"] and KEY not in attempt["request_payload"]
    # ...but the partner did get the key in the body, as configured
    assert receiver.for_request(request_id)[-1].body["metadata"]["webhook_key"] == KEY


def test_sigterm_lets_the_current_attempt_finish_and_be_recorded(
    make_runtime, write_config, start_worker, receiver
):
    receiver.default = Answer(delay=2.0)
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    worker = start_worker(write_config(endpoints=[endpoint(receiver)]))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    wait_for(lambda: receiver.for_request(request_id), timeout=20, message="the POST to start")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
    row = store.get_delivery(runtime.engine, request_id)
    assert row["status"] == "delivered"
    (attempt,) = store.list_attempts(runtime.engine, request_id)
    assert attempt["outcome"] == "delivered" and attempt["duration_ms"] >= 1900


def test_bad_config_stops_the_worker_at_start(tmp_path: Path, start_worker):
    config = tmp_path / "bad.yaml"
    config.write_text(json.dumps({"delivery": {"timeout": "thirty"}}))
    worker = start_worker(config)
    assert worker.process.wait(timeout=30) != 0
    output = worker.output()
    assert "delivery.timeout" in output and "Traceback" not in output


@pytest.mark.parametrize("status", ["delivered"])
def test_invalid_data_sends_nothing_and_logs_nothing(
    make_runtime, write_config, start_worker, receiver, tmp_path, status
):
    from dispatcher import InvalidEventData

    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(write_config(endpoints=[endpoint(receiver)]))
    bad = events.CATALOGUE["prescription_submitted"].example()
    bad["medication"][0]["quantity"] = "1"
    with pytest.raises(InvalidEventData, match=r"medication\[0\]\.quantity"):
        dispatch("prescription_submitted", bad)
    (good,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [good])
    assert row["status"] == status
    assert receiver.request_ids() == {good}
    assert [r["request_id"] for r in store.list_deliveries(runtime.engine)] == [good]
    process_log = (tmp_path / "logs" / "send-webhook-request-process.log").read_text()
    assert "prescription_submitted" not in process_log


def test_worker_serves_prometheus_metrics(make_runtime, write_config, start_worker, receiver):
    import socket

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(
        write_config(
            endpoints=[endpoint(receiver)], metrics={"port": port, "host": "127.0.0.1", "port_range": 1}
        )
    )
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    wait_final(runtime, [request_id])

    def scrape():
        try:
            return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except requests.RequestException:
            return ""

    text = wait_for(
        lambda: 'outcome="delivered"} 1.0' in scrape() and scrape(), timeout=20, message="metrics"
    )
    assert (
        'webhook_deliveries_total{endpoint="partner-a",event="order_changed",outcome="delivered"} 1.0' in text
    )
    assert "webhook_attempt_duration_seconds_count" in text and "webhook_queue_depth" in text


def test_retries_go_on_while_a_dead_worker_still_holds_rqs_scheduler_lock(
    make_runtime, write_config, start_worker, receiver, redis_client, tmp_path
):
    """A worker killed with its host keeps RQ's scheduler lock for a minute after its last beat,
    and the live workers try to take it only at their next maintenance, a minute apart: RQ's own
    scheduler moves no retry meanwhile. The workers' stand-in does, while the lock is held."""
    lock = "rq:scheduler-lock:send-webhook-request"
    redis_client.set(lock, "scheduler-of-a-dead-host", ex=300)  # no scheduler record: it beats no more
    receiver.script_all(503, 200)
    runtime = make_runtime(endpoints=[endpoint(receiver)])
    start_worker(write_config(endpoints=[endpoint(receiver)]))
    (request_id,) = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    (row,) = wait_final(runtime, [request_id], timeout=25)  # reconcile would move it only 30 s late
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert redis_client.get(lock) == b"scheduler-of-a-dead-host"  # RQ's scheduler never ran
    log = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log") if not p.is_symlink())
    assert "no rq scheduler running; due jobs moved to the queue" in log


# --- the worker's terminal -------------------------------------------------------------------

LINE = r"^\d\d:\d\d:\d\d  {event}  {endpoint}  {short}  {outcome}  \d+ ms$"
RQ_LINES = ("Job OK", "remaining", "Successfully completed", "cleaning registries", "Listening on")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def terminal_lines(output: str, request_id: str, endpoint_name: str) -> list[str]:
    """The terminal's lines for one delivery, each checked against the line's shape."""
    mine = [line for line in output.splitlines() if f"  {request_id[:8]}  " in line]
    for line in mine:
        shape = LINE.format(event="order_changed", endpoint=endpoint_name, short=request_id[:8], outcome=".+")
        assert re.match(shape, line), line
    return [line.split("  ")[4] for line in mine]


def dispatched_per_endpoint(runtime, names: list[str]) -> dict[str, str]:
    request_ids = dispatch("order_changed", events.CATALOGUE["order_changed"].example(), endpoints=names)
    return {store.get_delivery(runtime.engine, rid)["endpoint"]: rid for rid in request_ids}


def test_the_terminal_says_one_line_per_attempt_and_none_of_rqs(
    make_runtime, write_config, start_worker, receiver, tmp_path
):
    """200, 503 then 200, 400, a closed port and a refused destination: a line for each attempt
    with its outcome, and no RQ line about the job; no payload value or key, no partner's words."""
    port = closed_port()
    endpoints = [
        endpoint(receiver, name="pharmacy"),
        endpoint(receiver, name="lab"),
        endpoint(receiver, name="billing"),
        {"name": "closed", "url": f"http://127.0.0.1:{port}/hooks?patient=1", "key": KEY},
        {"name": "guarded", "url": f"http://0.0.0.0:{port}/hooks", "key": KEY},
    ]
    delivery = {"max_attempts": 2, "backoff": [1]}
    runtime = make_runtime(endpoints=endpoints, delivery=delivery)
    ids = dispatched_per_endpoint(runtime, [e["name"] for e in endpoints])
    receiver.scripts[ids["lab"]] = [Answer(status=503, body=b"PARTNER-WORDS"), Answer(status=200)]
    receiver.scripts[ids["billing"]] = [Answer(status=400, body=b'{"error":"PARTNER-WORDS"}')]
    worker = start_worker(write_config(endpoints=endpoints, delivery=delivery))
    wait_final(runtime, list(ids.values()))
    worker.stop()
    output = worker.output()

    assert terminal_lines(output, ids["pharmacy"], "pharmacy") == ["delivered 200"]
    assert terminal_lines(output, ids["lab"], "lab") == ["retry in 1 s after 503", "delivered 200"]
    assert terminal_lines(output, ids["billing"], "billing") == ["failed 400"]
    refused = f"connection refused by 127.0.0.1:{port}"
    assert terminal_lines(output, ids["closed"], "closed") == [
        f"retry in 1 s: {refused}",
        f"failed: {refused}; attempts exhausted",
    ]
    (guarded,) = terminal_lines(output, ids["guarded"], "guarded")
    assert guarded.startswith("refused: 0.0.0.0") and "allow_networks" in guarded
    assert "worker started: test-worker-1 on send-webhook-request" in output
    assert "worker stopped: test-worker-1" in output
    for rq_line in RQ_LINES:
        assert rq_line not in output
    example = events.CATALOGUE["order_changed"].example()
    for secret in (KEY, "PARTNER-WORDS", "patient=1", "/hooks", str(example["order_number"])):
        assert secret not in output

    # the same one line is what the log keeps, and what `dispatcher log show` prints
    first, last = store.list_attempts(runtime.engine, ids["closed"])
    assert (first["error"], last["error"]) == (refused, f"{refused}; attempts exhausted")
    shown = run_cli(write_config(endpoints=endpoints, delivery=delivery), "log", "show", ids["closed"]).stdout
    assert refused in shown and "Max retries" not in shown and "ConnectionPool" not in shown


def test_verbose_workers_under_a_supervisor_add_rqs_lines_to_theirs(
    make_runtime, write_config, receiver, tmp_path
):
    """``--concurrency 2 --verbose``: each child prints its attempts' lines, and RQ's own."""
    receiver.script_all(503, 200)
    ep = endpoint(receiver, name="pharmacy")
    runtime = make_runtime(endpoints=[ep])
    config = write_config(endpoints=[ep])
    env = {**os.environ, "DISPATCHER_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    env.pop("DISPATCHER_REDIS_URL", None)
    env.pop("DISPATCHER_DATABASE_URL", None)
    out = tmp_path / "supervisor.out"
    with open(out, "wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "worker.py", "--concurrency", "2", "--verbose", "--name", "loud"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            request_ids = [
                rid
                for _ in range(2)
                for rid in dispatch("order_changed", events.CATALOGUE["order_changed"].example())
            ]
            wait_final(runtime, request_ids)
        finally:
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(timeout=60)
    output = out.read_text(errors="replace")
    for request_id in request_ids:
        assert terminal_lines(output, request_id, "pharmacy") == ["retry in 1 s after 503", "delivered 200"]
    assert output.count("worker started: loud.") == 2
    assert "Job OK" in output and "remaining" in output
