"""The worker's metrics mirrored to OTLP (``dispatcher/telemetry/instruments.py``), exported to a
real OTLP/HTTP collector: nothing while telemetry is off; on, every instrument under the name
``/metrics`` gives it, the queue's age read at each export."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dispatcher import telemetry
from dispatcher.config.telemetry_settings import TelemetrySettings
from dispatcher.telemetry import instruments
from tests.otlp_receiver import OtlpReceiver

NAMES = {
    "webhook_deliveries",
    "dispatcher_delivery_lag_seconds",
    "dispatcher_first_attempt_lag_seconds",
    "dispatcher_inflight_attempts",
    "dispatcher_queue_oldest_age_seconds",
}


@pytest.fixture(autouse=True)
def no_instruments_left() -> Iterator[None]:
    """The instruments are the process's: none before a test, none after."""
    instruments.stop()
    yield
    instruments.stop()


def points(receiver: OtlpReceiver, name: str) -> list:
    with receiver.lock:
        return [(labels, point) for metric, labels, point in receiver.metric_points if metric == name]


def test_nothing_while_off() -> None:
    asked = []
    assert not telemetry.enabled()
    assert instruments.start(lambda: asked.append(1) or []) is None
    assert instruments.current() is None and asked == []


def test_instruments_record_and_a_flush_exports_them_under_their_names(traced: OtlpReceiver) -> None:
    made = instruments.start(lambda: [("send-webhook-request", 42.5)])
    assert made is not None and instruments.current() is made
    assert instruments.start(lambda: []) is made  # once per process

    labels = {"event": "order_changed", "endpoint": "pharmacy"}
    made.attempts.add(1, {**labels, "outcome": "delivered"})
    made.delivery_lag.record(0.75, labels)
    made.first_attempt_lag.record(0.5, labels)
    made.inflight.add(1, {"endpoint": "pharmacy"})
    made.inflight.add(-1, {"endpoint": "pharmacy"})
    telemetry.flush()

    assert NAMES <= traced.metric_names
    ((attempt_labels, attempts),) = points(traced, "webhook_deliveries")
    assert attempt_labels == {**labels, "outcome": "delivered"} and attempts.as_int == 1
    ((lag_labels, lag),) = points(traced, "dispatcher_delivery_lag_seconds")
    assert lag_labels == labels and (lag.count, lag.sum) == (1, 0.75)
    assert list(lag.explicit_bounds) == list(instruments.LAG_BUCKETS)
    ((_, first),) = points(traced, "dispatcher_first_attempt_lag_seconds")
    assert (first.count, first.sum) == (1, 0.5)
    ((_, inflight),) = points(traced, "dispatcher_inflight_attempts")
    assert inflight.as_int == 0
    assert b"order_changed" in traced.all_bytes()


def test_the_queue_age_is_observed_at_each_export(traced: OtlpReceiver) -> None:
    ages = iter([[("send-webhook-request", 12.5)], [("send-webhook-request", 0.0), ("other", 3.0)]])
    assert instruments.start(lambda: next(ages)) is not None

    telemetry.flush()
    first = [(labels, p.as_double) for labels, p in points(traced, "dispatcher_queue_oldest_age_seconds")]
    assert first == [({"queue": "send-webhook-request"}, 12.5)]

    telemetry.flush()
    seen = [(labels, p.as_double) for labels, p in points(traced, "dispatcher_queue_oldest_age_seconds")]
    assert seen[1:] == [({"queue": "send-webhook-request"}, 0.0), ({"queue": "other"}, 3.0)]


def test_a_queue_age_that_fails_costs_the_gauge_only(traced: OtlpReceiver) -> None:
    def broken() -> list[tuple[str, float]]:
        raise ConnectionError("redis away")

    made = instruments.start(broken)
    assert made is not None
    made.attempts.add(1, {"event": "order_changed", "endpoint": "pharmacy", "outcome": "failed"})
    telemetry.flush()

    assert "webhook_deliveries" in traced.metric_names
    assert points(traced, "dispatcher_queue_oldest_age_seconds") == []


def test_telemetry_turned_off_takes_the_instruments_with_it(traced: OtlpReceiver) -> None:
    """A process whose telemetry is configured off (or to another collector) records nothing more
    into the providers it shut down: :func:`instruments.start` is None again while off."""
    assert instruments.start(lambda: []) is not None

    telemetry.configure(TelemetrySettings())

    assert instruments.start(lambda: []) is None
    assert instruments.current() is None


def test_instruments_follow_telemetry_to_a_new_collector(traced: OtlpReceiver) -> None:
    assert instruments.start(lambda: []) is not None
    second = OtlpReceiver().start()
    try:
        assert telemetry.configure(TelemetrySettings(otlp_endpoint=second.url)) is True
        made = instruments.start(lambda: [])
        assert made is not None
        made.attempts.add(1, {"event": "order_changed", "endpoint": "pharmacy", "outcome": "delivered"})
        telemetry.flush()

        assert "webhook_deliveries" in second.metric_names
    finally:
        telemetry.shutdown()
        second.stop()
