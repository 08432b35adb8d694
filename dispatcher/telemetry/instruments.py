"""The worker's metrics mirrored to OTLP when telemetry is on: the same names, units and buckets
as on ``/metrics`` (``dispatcher.worker.metrics`` records both), so a collector's Prometheus
export matches a scrape."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from . import providers

LAG_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0,
)  # fmt: skip
"""Seconds, from 10 ms to 6 h: the lag histograms' buckets."""


class Instruments:
    """The OTLP instruments of one worker process."""

    def __init__(self, provider: Any, queue_age: Callable[[], Iterable[tuple[str, float]]]) -> None:
        from opentelemetry.metrics import Observation

        self.provider = provider
        """The meter provider they export through: once it is shut down (telemetry turned off, or
        on to another collector), these are stale."""
        meter = provider.get_meter(providers.INSTRUMENTATION)

        def observe(_options: Any) -> list[Any]:
            return [Observation(age, {"queue": name}) for name, age in queue_age()]

        self.attempts = meter.create_counter("webhook_deliveries", unit="1", description="Delivery attempts.")
        self.delivery_lag = meter.create_histogram(
            "dispatcher_delivery_lag_seconds",
            unit="s",
            description="Dispatch to delivered.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )
        self.first_attempt_lag = meter.create_histogram(
            "dispatcher_first_attempt_lag_seconds",
            unit="s",
            description="Dispatch to the first attempt started.",
            explicit_bucket_boundaries_advisory=LAG_BUCKETS,
        )
        self.inflight = meter.create_up_down_counter(
            "dispatcher_inflight_attempts", unit="1", description="POSTs in flight in this worker."
        )
        meter.create_observable_gauge(
            "dispatcher_queue_oldest_age_seconds",
            callbacks=[observe],
            unit="s",
            description="Seconds the job at the head of the queue has waited.",
        )


_lock = threading.Lock()
_instruments: Instruments | None = None


def start(queue_age: Callable[[], Iterable[tuple[str, float]]]) -> Instruments | None:
    """The worker's instruments, exported every minute (``OTEL_METRIC_EXPORT_INTERVAL``) to
    ``<otlp_endpoint>/v1/metrics``; None while telemetry is off."""
    global _instruments
    with _lock:
        if current() is None:
            provider = providers.meter_provider()
            _instruments = Instruments(provider, queue_age) if provider is not None else None
        return _instruments


def current() -> Instruments | None:
    """The instruments :func:`start` made, while the provider they export through is the
    process's (telemetry off, or configured anew since: None). An identity test per call."""
    made = _instruments
    if made is None or made.provider is not providers.current_meter_provider():
        return None
    return made


def stop() -> None:
    global _instruments
    with _lock:
        _instruments = None
