"""Prometheus metrics: the server in-process, scraped over HTTP from 127.0.0.1, with real Redis jobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from dispatcher import dispatch
from dispatcher import queue as queue_mod
from dispatcher.config import BreakerSettings
from dispatcher.contract import catalogue as events
from dispatcher.policy.breaker import Sample
from dispatcher.sending import breaker
from dispatcher.worker import metrics
from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def metrics_server(make_runtime, receiver):
    ports: list[int] = []

    def start(**runtime_kwargs):
        runtime_kwargs.setdefault("endpoints", [{"name": "partner", "url": receiver.url}])
        runtime = make_runtime(**runtime_kwargs)
        port = metrics.start_metrics_server(free_port(), runtime, host="127.0.0.1")
        ports.append(port)
        return runtime, port

    yield start
    metrics.stop_metrics_server()


def test_record_attempt_is_a_no_op_while_metrics_are_off():
    assert not metrics.enabled()
    before = metrics.DELIVERIES.labels("order_changed", "off-endpoint", "delivered")._value.get()
    metrics.record_attempt("order_changed", "off-endpoint", "delivered", 0.2)
    assert metrics.DELIVERIES.labels("order_changed", "off-endpoint", "delivered")._value.get() == before


def test_attempts_are_counted_by_event_endpoint_and_outcome(metrics_server):
    _runtime, port = metrics_server(
        endpoints=[
            {"name": "counted-a", "url": "http://127.0.0.1:9/"},
            {"name": "counted-b", "url": "http://127.0.0.1:9/", "events": ["order_changed"]},
        ]
    )
    before = scrape(port)
    # Series exist at 0 from the start, for every subscribed event of every endpoint.
    assert (
        value(
            before,
            "webhook_deliveries_total",
            event="message_created",
            endpoint="counted-a",
            outcome="failed",
        )
        == 0
    )
    assert (
        value(
            before,
            "webhook_deliveries_total",
            event="message_created",
            endpoint="counted-b",
            outcome="failed",
        )
        is None
    )

    metrics.record_attempt("order_changed", "counted-a", "delivered", 0.12)
    metrics.record_attempt("order_changed", "counted-a", "delivered", 0.3)
    metrics.record_attempt("order_changed", "counted-a", "retry_scheduled", 4.0)
    metrics.record_attempt("order_changed", "counted-b", "failed", None)  # failed without sending
    metrics.record_attempt("message_created", "counted-a", "interrupted", None)

    after = scrape(port)
    count = "webhook_deliveries_total"
    assert value(after, count, event="order_changed", endpoint="counted-a", outcome="delivered") == 2
    assert value(after, count, event="order_changed", endpoint="counted-a", outcome="retry_scheduled") == 1
    assert value(after, count, event="order_changed", endpoint="counted-b", outcome="failed") == 1
    assert value(after, count, event="message_created", endpoint="counted-a", outcome="interrupted") == 1
    assert value(after, count, event="order_changed", endpoint="counted-a", outcome="failed") == 0

    hist = "webhook_attempt_duration_seconds"
    assert value(after, f"{hist}_count", event="order_changed", endpoint="counted-a") == 3
    assert value(after, f"{hist}_sum", event="order_changed", endpoint="counted-a") == pytest.approx(4.42)
    assert value(after, f"{hist}_bucket", event="order_changed", endpoint="counted-a", le="0.25") == 1
    assert value(after, f"{hist}_bucket", event="order_changed", endpoint="counted-a", le="0.5") == 2
    assert value(after, f"{hist}_bucket", event="order_changed", endpoint="counted-a", le="5.0") == 3
    assert value(after, f"{hist}_count", event="order_changed", endpoint="counted-b") == 0
    assert value(after, "process_resident_memory_bytes") > 0


def test_lags_and_attempts_in_flight(metrics_server):
    _runtime, port = metrics_server(
        endpoints=[
            {"name": "lagged", "url": "http://127.0.0.1:9/"},
            {"name": "only-orders", "url": "http://127.0.0.1:9/", "events": ["order_changed"]},
        ]
    )
    lag, first = "dispatcher_delivery_lag_seconds", "dispatcher_first_attempt_lag_seconds"
    before = scrape(port)
    # The series exist at 0 from the start, for every subscribed event of every endpoint.
    assert value(before, f"{lag}_count", event="message_created", endpoint="lagged") == 0
    assert value(before, f"{first}_count", event="order_changed", endpoint="only-orders") == 0
    assert value(before, f"{lag}_count", event="message_created", endpoint="only-orders") is None
    assert value(before, "dispatcher_inflight_attempts", endpoint="lagged") == 0

    dispatched = datetime.now(UTC) - timedelta(seconds=90)
    metrics.attempt_started("order_changed", "lagged", 1, dispatched)
    metrics.attempt_started("order_changed", "lagged", 2, dispatched)  # a retry: not a first attempt
    during = scrape(port)
    assert value(during, "dispatcher_inflight_attempts", endpoint="lagged") == 2
    assert value(during, f"{first}_count", event="order_changed", endpoint="lagged") == 1
    assert value(during, f"{first}_bucket", event="order_changed", endpoint="lagged", le="60.0") == 0
    assert value(during, f"{first}_bucket", event="order_changed", endpoint="lagged", le="120.0") == 1
    metrics.attempt_ended("lagged")
    metrics.attempt_ended("lagged")
    metrics.delivered("order_changed", "lagged", dispatched)
    metrics.delivered("order_changed", "lagged", None)  # a claim without its time: not observed
    after = scrape(port)
    assert value(after, "dispatcher_inflight_attempts", endpoint="lagged") == 0
    assert value(after, f"{lag}_count", event="order_changed", endpoint="lagged") == 1
    assert 90 <= value(after, f"{lag}_sum", event="order_changed", endpoint="lagged") < 150
    assert value(after, f"{lag}_bucket", event="order_changed", endpoint="lagged", le="21600.0") == 1
    assert value(after, f"{lag}_bucket", event="order_changed", endpoint="lagged", le="+Inf") == 1
    assert value(after, f"{lag}_bucket", event="order_changed", endpoint="lagged", le="0.01") == 0


def test_lags_are_no_op_while_metrics_are_off():
    assert not metrics.enabled()
    series = metrics.DELIVERY_LAG.labels("order_changed", "off-endpoint")
    before = series._sum.get()
    metrics.delivered("order_changed", "off-endpoint", datetime.now(UTC) - timedelta(seconds=5))
    metrics.attempt_started("order_changed", "off-endpoint", 1, datetime.now(UTC))
    assert series._sum.get() == before
    assert metrics.INFLIGHT.labels("off-endpoint")._value.get() == 0


def test_queue_gauges_reflect_real_redis_jobs(metrics_server, redis_client):
    runtime, port = metrics_server()
    labels = {"queue": "send-webhook-request"}
    empty = scrape(port)
    assert value(empty, "webhook_redis_up", **labels) == 1
    assert value(empty, "webhook_queue_depth", **labels) == 0
    assert value(empty, "webhook_oldest_queued_age_seconds", **labels) == 0
    assert value(empty, "webhook_worker_info", worker="test-worker", **labels) == 1

    example = events.CATALOGUE["order_changed"].example()
    ids = [rid for _ in range(3) for rid in dispatch("order_changed", example)]
    head = redis_client.lindex(runtime.queue.key, 0).decode()
    past = (datetime.now(UTC) - timedelta(seconds=45)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    redis_client.hset(f"rq:job:{head}", "enqueued_at", past)
    queue_mod.remove_job(runtime.queue, ids[-1])
    queue_mod.ensure_queued(runtime.queue, ids[-1], at=datetime.now(UTC) + timedelta(minutes=5))

    samples = scrape(port)
    assert value(samples, "webhook_queue_depth", **labels) == 2
    assert value(samples, "webhook_scheduled_retries", **labels) == 1
    assert value(samples, "webhook_started_jobs", **labels) == 0
    assert value(samples, "webhook_failed_jobs", **labels) == 0
    assert 44 <= value(samples, "webhook_oldest_queued_age_seconds", **labels) < 90
    assert value(samples, "dispatcher_queue_oldest_age_seconds", **labels) == pytest.approx(
        value(samples, "webhook_oldest_queued_age_seconds", **labels), abs=2
    )


def test_each_endpoints_breaker_state_is_read_at_scrape_time(metrics_server, receiver, redis_client):
    endpoints = [
        {"name": "partner", "url": receiver.url},
        {"name": "lab", "url": receiver.url},
        {"name": "no-breaker", "url": receiver.url, "breaker": "off"},
    ]
    _runtime, port = metrics_server(endpoints=endpoints)
    gauge = "dispatcher_endpoint_breaker_state"
    closed = scrape(port)
    assert [value(closed, gauge, endpoint=e["name"]) for e in endpoints] == [0, 0, 0]

    seconds, micros = redis_client.time()
    now = seconds + micros / 1e6
    tuning = BreakerSettings(failure_ratio=1.0, min_attempts=1, open_seconds=30, max_open_seconds=60)
    breaker.record(redis_client, "partner", tuning, Sample.FAILED, now=now)  # open until now + 30
    breaker.record(redis_client, "lab", tuning, Sample.FAILED, now=now - 40)  # half-open by now
    breaker.record(redis_client, "no-breaker", tuning, Sample.FAILED, now=now)  # off: stays 0
    samples = scrape(port)
    assert value(samples, gauge, endpoint="partner") == 1
    assert value(samples, gauge, endpoint="lab") == 2
    assert value(samples, gauge, endpoint="no-breaker") == 0


def test_a_scrape_still_answers_when_redis_is_away(metrics_server):
    _runtime, port = metrics_server(redis_url="redis://127.0.0.1:1/5")
    samples = scrape(port)
    assert value(samples, "webhook_redis_up", queue="send-webhook-request") == 0
    assert value(samples, "webhook_queue_depth", queue="send-webhook-request") is None
    assert value(samples, "dispatcher_endpoint_breaker_state", endpoint="partner") is None


def test_a_busy_port_moves_to_the_next_and_a_second_start_is_idempotent(make_runtime):
    runtime = make_runtime()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        base = taken.getsockname()[1]
        try:
            try:
                port = metrics.start_metrics_server(base, runtime, host="127.0.0.1", search=50)
            except metrics.MetricsError:
                pytest.skip("no free port right after the taken one")
            assert base < port < base + 50
            assert metrics.start_metrics_server(base, runtime, host="127.0.0.1") == port
            assert scrape(port)
        finally:
            metrics.stop_metrics_server()
        with pytest.raises(metrics.MetricsError, match="in use"):
            metrics.start_metrics_server(base, runtime, host="127.0.0.1", search=1)
    assert not metrics.enabled()


CHILD = textwrap.dedent(
    """
    import sys, time
    from dispatcher.worker import metrics
    from dispatcher.config import parse_settings
    from dispatcher.runtime import Runtime

    base, attempts, redis_url, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    settings = parse_settings({"redis_url": redis_url, "process_log": log}, env={})
    port = metrics.start_metrics_server(base, Runtime(settings, worker_name=f"w{attempts}"), host="127.0.0.1")
    for _ in range(attempts):
        metrics.record_attempt("order_changed", "partner", "delivered", 0.01)
    print(port, flush=True)
    time.sleep(60)
    """
)


def test_worker_processes_on_one_host_each_report_their_own_counts(redis_url, tmp_path):
    """A port each: two processes given the same base port bind two ports, each counting its own."""
    base = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = []
    try:
        for attempts in (3, 5):
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(base),
                    str(attempts),
                    redis_url,
                    str(tmp_path / f"{attempts}.log"),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            children.append(child)
        ports = [int(child.stdout.readline()) for child in children]
        # Whichever started first holds the base port; the other took the next free one.
        assert len(set(ports)) == 2 and base in ports
        assert all(base <= port < base + metrics.DEFAULT_PORT_SEARCH for port in ports)
        counts = {}
        for port in ports:
            samples = scrape(port)
            worker = next(dict(k[1])["worker"] for k in samples if k[0] == "webhook_worker_info")
            counts[worker] = value(
                samples,
                "webhook_deliveries_total",
                event="order_changed",
                endpoint="partner",
                outcome="delivered",
            )
        assert counts == {"w3": 3, "w5": 5}
    finally:
        for child in children:
            child.kill()
            child.wait()
