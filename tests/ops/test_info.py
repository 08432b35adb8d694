"""``dispatcher info`` against the real Redis, SQLite and a real worker process."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from dispatcher import dispatch
from dispatcher import queue as queue_mod
from dispatcher.cli import cli, main
from dispatcher.contract import catalogue as events
from dispatcher.queue import rq_edge
from tests.conftest import wait_for

INFO_KEYS = {
    "queue",
    "queued",
    "scheduled",
    "started",
    "failed_jobs",
    "oldest_queued_age_seconds",
    "workers",
    "deliveries_by_status",
    "ordered_endpoints",
}
WORKER_KEYS = {"name", "hostname", "pid", "state", "current_job", "last_heartbeat", "alive"}


def info_json() -> dict:
    result = CliRunner().invoke(cli, ["info", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_info_on_an_empty_queue(make_runtime, receiver):
    make_runtime(endpoints=[{"name": "partner", "url": receiver.url}])
    document = info_json()
    assert set(document) == INFO_KEYS
    assert document == {
        "queue": "send-webhook-request",
        "queued": 0,
        "scheduled": 0,
        "started": 0,
        "failed_jobs": 0,
        "oldest_queued_age_seconds": None,
        "workers": [],
        "deliveries_by_status": {"queued": 0, "in_flight": 0, "retrying": 0, "delivered": 0, "failed": 0},
        "ordered_endpoints": [],
    }


def test_info_counts_queued_scheduled_and_failed_jobs(make_runtime, receiver, redis_client):
    runtime = make_runtime(
        endpoints=[{"name": "partner-a", "url": receiver.url}, {"name": "partner-b", "url": receiver.url}]
    )
    example = events.CATALOGUE["order_changed"].example()
    request_ids = dispatch("order_changed", example) + dispatch("order_changed", example)
    assert len(request_ids) == 4
    # The head job has waited a while: its enqueued_at is 90 s in the past.
    head = redis_client.lindex(runtime.queue.key, 0).decode()
    past = (datetime.now(UTC) - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    redis_client.hset(rq_edge.job_key(head), rq_edge.JobField.ENQUEUED_AT, past)
    # One retry scheduled for later.
    (scheduled_id,) = dispatch("order_changed", example, endpoints=["partner-a"])
    queue_mod.remove_job(runtime.queue, scheduled_id)
    assert queue_mod.ensure_queued(runtime.queue, scheduled_id, at=datetime.now(UTC) + timedelta(hours=1))

    document = info_json()
    assert document["queued"] == 4
    assert document["scheduled"] == 1
    assert document["started"] == 0
    assert document["failed_jobs"] == 0
    assert 89 <= document["oldest_queued_age_seconds"] < 120
    assert document["deliveries_by_status"]["queued"] == 5
    assert sum(document["deliveries_by_status"].values()) == 5

    table = CliRunner().invoke(cli, ["info"], catch_exceptions=False)
    assert table.exit_code == 0
    assert "send-webhook-request" in table.stdout
    assert re.search(r"\b9\ds\b", table.stdout), table.stdout  # the head job's age: 90 s and a bit


def test_info_shows_a_real_worker_and_what_it_delivered(make_runtime, receiver, write_config, start_worker):
    endpoints = [{"name": "partner", "url": receiver.url}]
    make_runtime(endpoints=endpoints)
    config = write_config(endpoints=endpoints)
    worker = start_worker(config, name="info-worker-1")

    def registered() -> list[dict]:
        return [w for w in info_json()["workers"] if w["name"] == "info-worker-1"]

    # Listed by name alone while only its heartbeat has registered it, then with state '?' until
    # RQ writes the state just after the worker's birth.
    (shown,) = wait_for(
        lambda: [w for w in registered() if w["pid"] and w["state"] != "?"],
        timeout=30,
        message="the worker in `info`",
    )
    assert set(shown) == WORKER_KEYS
    assert shown["pid"] == worker.process.pid
    assert shown["hostname"] == os.uname().nodename
    assert shown["state"] in {"idle", "busy", "started"}
    assert shown["last_heartbeat"].endswith("Z")
    heartbeat = datetime.fromisoformat(shown["last_heartbeat"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - heartbeat).total_seconds()) < 120
    wait_for(lambda: registered()[0]["alive"], timeout=15, message="the liveness key")

    request_ids = dispatch("order_changed", events.CATALOGUE["order_changed"].example())
    wait_for(
        lambda: info_json()["deliveries_by_status"]["delivered"] == len(request_ids),
        timeout=30,
        message="the delivery",
    )
    document = info_json()
    assert document["queued"] == 0
    assert document["oldest_queued_age_seconds"] is None

    table = CliRunner().invoke(cli, ["info"], catch_exceptions=False)
    assert "info-worker-1" in table.stdout and str(worker.process.pid) in table.stdout

    worker.stop()
    wait_for(lambda: not registered(), timeout=15, message="the stopped worker to leave `info`")


def test_a_worker_stays_in_info_after_redis_is_flushed_under_it(
    make_runtime, receiver, write_config, start_worker, redis_client
):
    """RQ adds a worker to its set of workers only at birth: after a FLUSHDB under a running
    worker, ``info`` still lists it, alive, from the dispatcher's registry of heartbeats."""
    endpoints = [{"name": "partner", "url": receiver.url}]
    make_runtime(endpoints=endpoints)
    start_worker(write_config(endpoints=endpoints), name="info-flushed-1")

    def shown() -> list[dict]:
        return [w for w in info_json()["workers"] if w["name"] == "info-flushed-1" and w["alive"]]

    wait_for(shown, timeout=30, message="the worker in `info`")
    # The heartbeat registry may list the worker a moment before RQ's birth adds it to RQ's set:
    # flush only once it is born, so the flush is really under a running worker.
    wait_for(lambda: redis_client.exists("rq:workers"), timeout=30, message="RQ's birth of the worker")
    redis_client.flushdb()
    assert not redis_client.exists("rq:workers")  # RQ's own set is gone, and stays gone
    (again,) = wait_for(shown, timeout=30, message="the worker back in `info` after the flush")
    assert set(again) == WORKER_KEYS and not redis_client.exists("rq:workers")


def test_unreachable_redis_is_one_line_naming_the_url(make_runtime, capsys):
    make_runtime(redis_url="redis://127.0.0.1:1/5")
    with pytest.raises(SystemExit) as exited:
        main(["info", "--json"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: Redis at redis://127.0.0.1:1/5 is unreachable")


def test_info_reports_the_keys_waiting_on_each_ordered_endpoint(make_runtime, receiver):
    make_runtime(
        endpoints=[
            {"name": "pharmacy", "url": receiver.url, "ordered": True},
            {"name": "billing", "url": receiver.url},
        ]
    )
    data = events.CATALOGUE["message_created"].example()
    for encounter in ("E-1", "E-1", "E-1", "E-2", "E-3", "E-3"):
        dispatch("message_created", {**data, "encounter_id": encounter})
    document = info_json()
    (pharmacy,) = document["ordered_endpoints"]
    assert pharmacy["endpoint"] == "pharmacy" and pharmacy["keys_waiting"] == 2  # E-1 and E-3
    assert 0 <= pharmacy["oldest_waiting_head_age_seconds"] < 60
    table = CliRunner().invoke(cli, ["info"], catch_exceptions=False).stdout
    assert "ordered endpoint" in table and "pharmacy" in table
