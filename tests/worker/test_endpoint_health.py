"""Endpoint health: 410 and failure windows disable; nothing dispatched to a disabled endpoint vanishes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dispatcher import dispatch, store
from dispatcher.cli import cli
from dispatcher.contract import catalogue as events
from tests.servers import Answer
from tests.worker.test_flight import deliver

EXAMPLE = events.CATALOGUE["order_changed"].example()


def ep(receiver, **extra):
    return {"name": "partner-a", "url": receiver.url, "key": "k-health-1", **extra}


def test_410_disables_the_endpoint_and_later_deliveries_are_held_back(make_runtime, receiver, redis_client):
    runtime = make_runtime(endpoints=[ep(receiver)])
    receiver.default = Answer(status=410)
    (first,) = dispatch("order_changed", EXAMPLE)
    assert deliver(first) is None
    assert store.get_delivery(runtime.engine, first)["status"] == "failed"
    assert store.disabled_endpoints(runtime.engine) == {"partner-a": "410 Gone"}

    (held,) = dispatch("order_changed", EXAMPLE)  # still an id: nothing silently vanishes
    row = store.get_delivery(runtime.engine, held)
    assert row["status"] == "failed" and row["reason"] == "endpoint_disabled" and row["attempts"] == 0
    assert redis_client.exists(f"rq:job:{held}") == 0  # no job for a disabled endpoint
    shown = json.loads(CliRunner().invoke(cli, ["log", "show", held, "--json"]).output)
    assert shown["reason"] == "endpoint_disabled"
    assert len(receiver.received) == 1


def test_a_job_already_queued_for_a_disabled_endpoint_is_held_back_without_sending(make_runtime, receiver):
    runtime = make_runtime(endpoints=[ep(receiver)])
    (request_id,) = dispatch("order_changed", EXAMPLE)
    store.set_endpoint_disabled(runtime.engine, "partner-a", True, "disabled by an operator")
    runtime.disabled.invalidate()
    assert deliver(request_id) is None
    row = store.get_delivery(runtime.engine, request_id)
    assert row["status"] == "failed" and row["reason"] == "endpoint_disabled" and row["attempts"] == 0
    assert store.list_attempts(runtime.engine, request_id) == []
    assert receiver.received == []


def test_failures_without_success_over_the_window_disable(make_runtime, receiver):
    runtime = make_runtime(endpoints=[ep(receiver, disable_after={"failed_deliveries": 3, "window": "1h"})])
    receiver.default = Answer(status=400)
    ids = [dispatch("order_changed", EXAMPLE)[0] for _ in range(3)]
    deliver(ids[0])
    deliver(ids[1])
    assert store.disabled_endpoints(runtime.engine) == {}
    deliver(ids[2])
    (reason,) = store.disabled_endpoints(runtime.engine).values()
    assert reason.startswith("3 failed deliveries and no success")


def test_a_success_in_the_window_keeps_the_endpoint_enabled(make_runtime, receiver):
    runtime = make_runtime(endpoints=[ep(receiver, disable_after={"failed_deliveries": 2, "window": "1h"})])
    receiver.script_all(200)
    deliver(dispatch("order_changed", EXAMPLE)[0])
    receiver.script_all(400)
    for _ in range(3):
        deliver(dispatch("order_changed", EXAMPLE)[0])
    assert store.disabled_endpoints(runtime.engine) == {}
