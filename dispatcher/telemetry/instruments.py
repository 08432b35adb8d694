"""The worker's ``/metrics`` registry exported over OTLP when telemetry is on: the very series
Prometheus scrapes, read from ``prometheus_client`` at each export (every minute,
``OTEL_METRIC_EXPORT_INTERVAL``) and handed to OpenTelemetry's OTLP/HTTP metric exporter as its
own data model. Counting an attempt costs nothing more with telemetry on: nothing is recorded
twice, and a collector's Prometheus export shows the names, labels and buckets a scrape does."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from ..logs import log_line
from . import providers

LAG_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0,
)  # fmt: skip
"""Seconds, from 10 ms to 6 h: the lag histograms' buckets."""
DEFAULT_INTERVAL_SECONDS = 60.0

Families = Callable[[], Iterable[Any]]
"""What the registry holds now: ``prometheus_client`` metric families."""


def _interval() -> float:
    """``OTEL_METRIC_EXPORT_INTERVAL`` (milliseconds, as the SDK reads it), else a minute."""
    try:
        return max(0.05, float(os.environ["OTEL_METRIC_EXPORT_INTERVAL"]) / 1000)
    except (KeyError, ValueError):
        return DEFAULT_INTERVAL_SECONDS


class RegistryExport:
    """A thread exporting the registry's families every interval, and once more at :meth:`stop`."""

    def __init__(self, families: Families, exporter: Any, resource: Any) -> None:
        self.families, self.exporter, self.resource = families, exporter, resource
        self.started = time.time_ns()
        self.stopped = threading.Event()
        self.warned = False
        self.thread = threading.Thread(target=self._run, name="dispatcher-otlp-metrics", daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(_interval()):
            self.export()

    def export(self) -> bool:
        """One export of what the registry holds now; False (and one warning) when it failed."""
        try:
            data = metrics_data(self.families(), self.resource, self.started, time.time_ns())
            result = self.exporter.export(data)
            return bool(result.value == 0)  # MetricExportResult.SUCCESS
        except Exception as exc:  # noqa: BLE001 - a collector away must never reach the worker
            if not self.warned:
                self.warned = True
                log_line(logging.WARNING, "telemetry: metrics not exported", error=type(exc).__name__)
            return False

    def stop(self) -> None:
        """Stops the thread, then one last export and the exporter's shutdown, waiting at most
        :data:`~.providers.EXIT_SECONDS` for them (a collector away drops that last export)."""
        if self.stopped.is_set():
            return
        self.stopped.set()

        def last() -> None:
            self.thread.join()
            self.export()
            self.exporter.shutdown()

        providers.bounded(last, providers.EXIT_SECONDS)


def metrics_data(families: Iterable[Any], resource: Any, start_ns: int, now_ns: int) -> Any:
    """The families as OpenTelemetry's ``MetricsData``: a counter as a monotonic cumulative sum,
    a gauge as a gauge, a histogram as a cumulative histogram with the same bounds."""
    from opentelemetry.sdk.metrics.export import MetricsData, ResourceMetrics, ScopeMetrics
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    converted = [
        m
        for family in families
        if (m := _metric(family, start_ns, now_ns)) is not None and m.data.data_points
    ]
    scope = ScopeMetrics(InstrumentationScope(providers.INSTRUMENTATION), converted, "")
    return MetricsData([ResourceMetrics(resource, [scope], "")])


def _metric(family: Any, start_ns: int, now_ns: int) -> Any:
    from opentelemetry.sdk.metrics.export import AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum

    unit = "s" if family.name.endswith("_seconds") else ""  # "1" would make a translator add _ratio
    if family.type == "histogram":
        data: Any = _histogram(family, start_ns, now_ns)
    elif family.type in ("counter", "gauge"):
        suffix = "_total" if family.type == "counter" else ""
        points = [
            NumberDataPoint(dict(s.labels), start_ns, now_ns, s.value)
            for s in family.samples
            if s.name == family.name + suffix
        ]
        cumulative = AggregationTemporality.CUMULATIVE
        data = Sum(points, cumulative, True) if family.type == "counter" else Gauge(points)
    else:
        return None
    return Metric(family.name, family.documentation, unit, data)


def _histogram(family: Any, start_ns: int, now_ns: int) -> Any:
    from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, HistogramDataPoint

    series: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in family.samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        one = series.setdefault(labels, {"buckets": []})
        if sample.name.endswith("_bucket"):
            one["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_count"):
            one["count"] = int(sample.value)
        elif sample.name.endswith("_sum"):
            one["sum"] = sample.value
    unknown = cast(float, None)  # OTLP's min and max are optional, and the buckets do not know them
    points = []
    for labels, one in series.items():
        cumulative = sorted(one["buckets"])
        bounds = [le for le, _ in cumulative if not math.isinf(le)]
        counts = [int(c - (cumulative[i - 1][1] if i else 0)) for i, (_, c) in enumerate(cumulative)]
        points.append(
            HistogramDataPoint(
                dict(labels),
                start_ns,
                now_ns,
                one.get("count", 0),
                one.get("sum", 0.0),
                counts,
                bounds,
                unknown,
                unknown,
            )
        )
    return Histogram(points, AggregationTemporality.CUMULATIVE)


_lock = threading.Lock()
_export: RegistryExport | None = None


def forget_in_child() -> None:
    """A worker's forked child exports nothing of its parent's registry (its thread did not
    come along)."""
    global _export, _lock
    _lock = threading.Lock()
    _export = None


def start(families: Families) -> RegistryExport | None:
    """Exports ``families`` to ``<otlp_endpoint>/v1/metrics`` from now on; None while telemetry
    is off. Stopped (with a last export) when telemetry is shut down or configured anew."""
    global _export
    with _lock:
        if _export is not None and not _export.stopped.is_set():
            return _export
        made = providers.metric_exporter()
        if made is None:
            return None
        exporter, resource = made
        _export = RegistryExport(families, exporter, resource)
        providers.on_shutdown(_export.stop)
        _export.thread.start()
        return _export


def current() -> RegistryExport | None:
    """The export running now, if any."""
    export = _export
    return export if export is not None and not export.stopped.is_set() else None


def stop() -> None:
    """Stops the export after one last one (a worker stopping)."""
    export = current()
    if export is not None:
        export.stop()
