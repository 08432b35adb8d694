"""The worker's registry exported over OTLP (``dispatcher/telemetry/instruments.py``) to a real
OTLP/HTTP collector: nothing while telemetry is off; on, every family of a real
``prometheus_client`` registry under its own name, labels and buckets, read at each export; a
last export at stop; stopped with telemetry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from dispatcher import telemetry
from dispatcher.config.telemetry_settings import TelemetrySettings
from dispatcher.telemetry import instruments
from tests.conftest import wait_for
from tests.otlp_receiver import OtlpReceiver


@pytest.fixture(autouse=True)
def no_export_left() -> Iterator[None]:
    """The export is the process's: none before a test, none after."""
    instruments.stop()
    yield
    instruments.stop()


def points(receiver: OtlpReceiver, name: str) -> list:
    with receiver.lock:
        return [(labels, point) for metric, labels, point in receiver.metric_points if metric == name]


def registry() -> tuple[CollectorRegistry, Counter, Histogram, Gauge]:
    made = CollectorRegistry()
    attempts = Counter("webhook_deliveries", "Attempts.", ("event", "endpoint", "outcome"), registry=made)
    lag = Histogram(
        "dispatcher_delivery_lag_seconds",
        "Lag.",
        ("event", "endpoint"),
        buckets=instruments.LAG_BUCKETS,
        registry=made,
    )
    inflight = Gauge("dispatcher_inflight_attempts", "In flight.", ("endpoint",), registry=made)
    return made, attempts, lag, inflight


def test_nothing_while_off() -> None:
    asked = []
    assert not telemetry.enabled()
    assert instruments.start(lambda: asked.append(1) or []) is None
    assert instruments.current() is None and asked == []


def test_the_registry_goes_out_under_its_own_names_labels_and_buckets(traced: OtlpReceiver) -> None:
    made, attempts, lag, inflight = registry()
    labels = {"event": "order_changed", "endpoint": "pharmacy"}
    attempts.labels(outcome="delivered", **labels).inc(3)
    for seconds in (0.005, 0.75, 7200.0, 99999.0):
        lag.labels(**labels).observe(seconds)
    inflight.labels("pharmacy").set(2)

    export = instruments.start(made.collect)
    assert export is not None and instruments.current() is export
    assert instruments.start(lambda: []) is export  # once per process
    assert export.export() is True

    ((attempt_labels, counted),) = points(traced, "webhook_deliveries")
    assert attempt_labels == {**labels, "outcome": "delivered"} and counted.as_double == 3
    ((lag_labels, histogram),) = points(traced, "dispatcher_delivery_lag_seconds")
    assert lag_labels == labels and histogram.count == 4
    assert histogram.sum == pytest.approx(0.005 + 0.75 + 7200 + 99999)
    assert list(histogram.explicit_bounds) == list(instruments.LAG_BUCKETS)
    counts = list(histogram.bucket_counts)  # per bucket, not cumulative: 10 ms, 1 s, 2 h, over 6 h
    assert len(counts) == len(instruments.LAG_BUCKETS) + 1 and sum(counts) == 4
    assert [i for i, c in enumerate(counts) if c] == [0, 6, 17, 20]
    assert not histogram.HasField("min") and not histogram.HasField("max")
    ((_, gauge),) = points(traced, "dispatcher_inflight_attempts")
    assert gauge.as_double == 2


def test_each_export_reads_the_registry_again_and_stop_sends_a_last_one(traced: OtlpReceiver) -> None:
    made, attempts, _lag, _inflight = registry()
    series = attempts.labels("order_changed", "pharmacy", "failed")
    export = instruments.start(made.collect)
    assert export is not None
    series.inc()
    export.export()
    series.inc()
    instruments.stop()  # the last export goes before the exporter shuts down
    assert [p.as_double for _, p in points(traced, "webhook_deliveries")] == [1, 2]
    assert instruments.current() is None


def test_the_thread_exports_every_interval(traced: OtlpReceiver, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
    made, attempts, _lag, _inflight = registry()
    attempts.labels("order_changed", "pharmacy", "delivered").inc()
    assert instruments.start(made.collect) is not None
    wait_for(lambda: len(points(traced, "webhook_deliveries")) >= 2, message="two exports on their own")


def test_a_registry_that_fails_is_one_warning_and_no_export(traced: OtlpReceiver, process_log) -> None:
    def broken() -> list:
        raise ConnectionError("redis away")

    export = instruments.start(broken)
    assert export is not None
    assert export.export() is False and export.export() is False
    assert process_log.lines("metrics not exported") == [
        "telemetry: metrics not exported error=ConnectionError"
    ]
    assert traced.metric_names == set()


def test_telemetry_turned_off_takes_the_export_with_it(traced: OtlpReceiver) -> None:
    made, attempts, _lag, _inflight = registry()
    attempts.labels("order_changed", "pharmacy", "delivered").inc()
    assert instruments.start(made.collect) is not None

    telemetry.configure(TelemetrySettings())

    assert instruments.current() is None and instruments.start(made.collect) is None
    assert "webhook_deliveries" in traced.metric_names  # the last export went out as it stopped


def test_the_export_follows_telemetry_to_a_new_collector(traced: OtlpReceiver) -> None:
    made, attempts, _lag, _inflight = registry()
    attempts.labels("order_changed", "pharmacy", "delivered").inc()
    assert instruments.start(made.collect) is not None
    second = OtlpReceiver().start()
    try:
        assert telemetry.configure(TelemetrySettings(otlp_endpoint=second.url)) is True
        export = instruments.start(made.collect)
        assert export is not None
        export.export()
        assert "webhook_deliveries" in second.metric_names
    finally:
        telemetry.shutdown()
        second.stop()


def test_only_seconds_have_a_unit_so_no_translator_renames_a_gauge(traced: OtlpReceiver) -> None:
    """Unit "1" would make an OTLP-to-Prometheus translator add _ratio to a gauge's name
    (webhook_worker_info_ratio), breaking the shipped alert rules."""
    made, attempts, lag, inflight = registry()
    attempts.labels("order_changed", "pharmacy", "delivered").inc()
    lag.labels("order_changed", "pharmacy").observe(1.0)
    inflight.labels("pharmacy").set(1)
    data = instruments.metrics_data(made.collect(), None, 0, 1)
    units = {m.name: m.unit for m in data.resource_metrics[0].scope_metrics[0].metrics}
    assert units == {
        "webhook_deliveries": "",
        "dispatcher_delivery_lag_seconds": "s",
        "dispatcher_inflight_attempts": "",
    }
