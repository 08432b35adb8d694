"""Prometheus metrics for workers (``prometheus-client``).

Exposed on ``http://<host>:<port>/metrics`` by each worker process:

* ``webhook_deliveries_total{event,endpoint,outcome}`` (counter): one per attempt, by the
  attempt's outcome (``delivered``, ``retry_scheduled``, ``failed``, ``interrupted``).
* ``webhook_attempt_duration_seconds{event,endpoint}`` (histogram): time of the HTTP exchange
  of attempts that were sent.
* Read from Redis at scrape time by :class:`QueueCollector` (all with a ``queue`` label):
  ``webhook_queue_depth``, ``webhook_scheduled_retries``, ``webhook_started_jobs``,
  ``webhook_failed_jobs``, ``webhook_oldest_queued_age_seconds`` (0 when the queue is empty),
  ``webhook_redis_up`` (0 when Redis did not answer the scrape; the other queue gauges are
  then absent), and ``webhook_worker_info{worker,queue}`` = 1, to tell which worker an
  ``instance`` is.
* ``dispatcher_endpoint_breaker_state{endpoint}``, read from Redis at scrape time for every
  configured endpoint: 0 closed (or its breaker is off), 1 open, 2 half-open (one delivery
  probes the partner). The same on every worker: aggregate with ``max by (endpoint)``.
* ``dispatcher_delivery_lag_seconds{event,endpoint}`` (histogram, 10 ms to 6 h): from dispatch
  (the delivery's ``created_at``) to the attempt that delivered it -- what a partner waits.
* ``dispatcher_first_attempt_lag_seconds{event,endpoint}`` (histogram, the same buckets): from
  dispatch to its first attempt's POST starting -- the queue's part of the lag.
* ``dispatcher_queue_oldest_age_seconds{queue}``: as ``webhook_oldest_queued_age_seconds``,
  under the name the alert rules use (``deploy/prometheus/alerts.yml``).
* ``dispatcher_inflight_attempts{endpoint}``: POSTs this worker process has under way.
* The usual ``process_*`` and ``python_*`` series of the worker process.

**Several workers on one host: a port each.** A worker binds the configured port, or, when
another worker already holds it, the next free one up to ``port + search - 1``
(:data:`DEFAULT_PORT_SEARCH` ports). Each process keeps its own counters in memory, so nothing is
shared between processes: no ``PROMETHEUS_MULTIPROC_DIR`` to create, set before import, clean at
boot and leave behind, and no question of which process serves the aggregate when another dies.
Prometheus scrapes every port of the range (a port without a worker is simply ``up == 0``);
counters of a restarted worker start again at 0, which ``rate()`` and ``increase()`` handle. The
queue gauges are the same on every worker of a queue: aggregate them with ``max by (queue)``.

:func:`record_attempt` costs one boolean test until :func:`start_metrics_server` (or
:func:`enable`) has run in the process, so the job can call it unconditionally.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .. import queue as queue_mod
from .. import telemetry
from ..errors import DispatcherError
from ..logs import log_line
from ..sending import breaker
from ..telemetry import instruments
from ..telemetry.instruments import LAG_BUCKETS
from ..vocabulary import EVENT_NAMES, AttemptOutcome

DEFAULT_PORT = 9108
DEFAULT_PORT_SEARCH = 16
"""Ports tried from the configured one: room for this many worker processes on one host."""
SCRAPE_REDIS_TIMEOUT = 2.0
"""Seconds the scrape-time collector waits on Redis before reporting ``webhook_redis_up 0``."""
DURATION_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
OUTCOMES = (AttemptOutcome.DELIVERED, AttemptOutcome.RETRY_SCHEDULED, AttemptOutcome.FAILED)
"""Outcomes whose series are created at 0 for every configured endpoint and event at start."""

REGISTRY = CollectorRegistry()
"""The worker's registry (not prometheus_client's global one, so importing this module
registers nothing elsewhere)."""
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

DELIVERIES = Counter(
    "webhook_deliveries",
    "Delivery attempts by event, endpoint and outcome (delivered, retry_scheduled, failed, interrupted).",
    ("event", "endpoint", "outcome"),
    registry=REGISTRY,
)
ATTEMPT_DURATION = Histogram(
    "webhook_attempt_duration_seconds",
    "Duration of the HTTP exchange of one delivery attempt.",
    ("event", "endpoint"),
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
DELIVERY_LAG = Histogram(
    "dispatcher_delivery_lag_seconds",
    "Seconds from dispatch to the attempt that delivered, by event and endpoint.",
    ("event", "endpoint"),
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
FIRST_ATTEMPT_LAG = Histogram(
    "dispatcher_first_attempt_lag_seconds",
    "Seconds from dispatch to the first attempt's POST starting, by event and endpoint.",
    ("event", "endpoint"),
    buckets=LAG_BUCKETS,
    registry=REGISTRY,
)
INFLIGHT = Gauge(
    "dispatcher_inflight_attempts",
    "POSTs this worker process has under way, by endpoint.",
    ("endpoint",),
    registry=REGISTRY,
)


class MetricsError(DispatcherError):
    """The metrics server could not start (every port of its range taken, a bad address)."""


_enabled = False
_lock = threading.Lock()
_server: Any = None
_collector: QueueCollector | None = None


def enable() -> None:
    """Makes :func:`record_attempt` count (done by :func:`start_metrics_server`)."""
    global _enabled
    _enabled = True


def enabled() -> bool:
    return _enabled


def record_attempt(event: str, endpoint: str, outcome: str, duration_seconds: float | None) -> None:
    """Counts one attempt and observes its duration; nothing at all while metrics are off.

    ``duration_seconds`` None (an attempt failed without sending, or cut short) counts the
    attempt without a duration sample. Never raises: metrics must not break a delivery.
    """
    if not _enabled:
        return
    try:
        DELIVERIES.labels(event, endpoint, outcome).inc()
        if duration_seconds is not None:
            ATTEMPT_DURATION.labels(event, endpoint).observe(max(0.0, float(duration_seconds)))
    except Exception:  # noqa: BLE001 - metrics must never break a delivery
        pass


def attempt_started(event: str, endpoint: str, attempt: int, dispatched_at: datetime | None) -> None:
    """A POST is starting: one more in flight, and the first attempt's lag since dispatch."""
    if not _enabled:
        return
    try:
        INFLIGHT.labels(endpoint).inc()
        lag = _since(dispatched_at) if attempt == 1 else None
        if lag is not None:
            FIRST_ATTEMPT_LAG.labels(event, endpoint).observe(lag)
    except Exception:  # noqa: BLE001 - metrics must never break a delivery
        pass


def attempt_ended(endpoint: str) -> None:
    """The POST :func:`attempt_started` counted is over."""
    if not _enabled:
        return
    try:
        INFLIGHT.labels(endpoint).dec()
    except Exception:  # noqa: BLE001 - metrics must never break a delivery
        pass


def delivered(event: str, endpoint: str, dispatched_at: datetime | None) -> None:
    """A delivery reached its partner: its lag since dispatch."""
    lag = _since(dispatched_at)
    if not _enabled or lag is None:
        return
    try:
        DELIVERY_LAG.labels(event, endpoint).observe(lag)
    except Exception:  # noqa: BLE001 - metrics must never break a delivery
        pass


def _since(dispatched_at: datetime | None) -> float | None:
    if dispatched_at is None:
        return None
    return max(0.0, (datetime.now(UTC) - dispatched_at).total_seconds())


class QueueCollector(Collector):
    """Queue gauges read from Redis at each scrape, with short timeouts of their own."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        """As the worker started (Redis and the queue do not change); the endpoints are read
        from the runtime at each scrape, as they change."""
        self.worker = runtime.worker_name
        self._client: redis.Redis | None = None
        self._queue: Any = None

    @property
    def queue(self) -> Any:
        if self._queue is None:
            self._client = queue_mod.connect(self.settings.redis_url, socket_timeout=SCRAPE_REDIS_TIMEOUT)
            self._queue = queue_mod.make_queue(self.settings, self._client)
        return self._queue

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        _initialize_series(
            self.runtime.settings
        )  # an endpoint added at runtime: its series at 0 from the next read
        name = self.settings.queue_name
        info = GaugeMetricFamily(
            "webhook_worker_info", "The worker process behind this endpoint.", labels=("worker", "queue")
        )
        info.add_metric((self.worker, name), 1)
        yield info
        up = GaugeMetricFamily("webhook_redis_up", "1 when Redis answered this scrape.", labels=("queue",))
        try:
            snapshot = queue_mod.queue_snapshot(self.queue)
        except redis.RedisError:
            up.add_metric((name,), 0)
            yield up
            return
        up.add_metric((name,), 1)
        yield up
        gauges = (
            ("webhook_queue_depth", "Jobs waiting in the queue.", snapshot["queued"]),
            (
                "webhook_scheduled_retries",
                "Jobs scheduled for a later attempt (RQ scheduled registry).",
                snapshot["scheduled"],
            ),
            ("webhook_started_jobs", "Jobs a worker is running (RQ started registry).", snapshot["started"]),
            ("webhook_failed_jobs", "Jobs in RQ's failed registry.", snapshot["failed_jobs"]),
            (
                "webhook_oldest_queued_age_seconds",
                "Seconds the job at the head of the queue has waited; 0 when the queue is empty.",
                snapshot["oldest_queued_age_seconds"] or 0.0,
            ),
            (
                "dispatcher_queue_oldest_age_seconds",
                "Seconds the job at the head of the queue has waited; 0 when the queue is empty.",
                snapshot["oldest_queued_age_seconds"] or 0.0,
            ),
        )
        for metric, documentation, value in gauges:
            family = GaugeMetricFamily(metric, documentation, labels=("queue",))
            family.add_metric((name,), float(value))
            yield family
        yield from self._breakers()

    def _breakers(self) -> Iterator[GaugeMetricFamily]:
        """Each configured endpoint's breaker (absent when Redis did not answer this read)."""
        settings = self.runtime.settings  # the endpoints in force now, the database's
        names = [endpoint.name for endpoint in settings.endpoints]
        try:
            views = breaker.states(self.queue.connection, names)
        except redis.RedisError:
            return
        family = GaugeMetricFamily(
            "dispatcher_endpoint_breaker_state",
            "An endpoint's circuit breaker: 0 closed (or off), 1 open, 2 half-open.",
            labels=("endpoint",),
        )
        for endpoint in settings.endpoints:
            off = settings.delivery_for(endpoint).breaker is None
            family.add_metric((endpoint.name,), 0.0 if off else float(views[endpoint.name].gauge))
        yield family


def _initialize_series(settings: Any) -> None:
    """Creates the counters' series at 0, so ``rate()`` sees them before the first attempt."""
    for endpoint in settings.endpoints:
        INFLIGHT.labels(endpoint.name)
        for event in EVENT_NAMES:
            if endpoint.subscribes_to(event):
                ATTEMPT_DURATION.labels(event, endpoint.name)
                DELIVERY_LAG.labels(event, endpoint.name)
                FIRST_ATTEMPT_LAG.labels(event, endpoint.name)
                for outcome in OUTCOMES:
                    DELIVERIES.labels(event, endpoint.name, outcome)


def _collect_for(runtime: Any) -> None:
    """The queue's gauges read at each collection, the series made at 0, counting on: once,
    for the scrape and the OTLP export alike (``_lock`` held)."""
    global _collector
    if _collector is None:
        _collector = QueueCollector(runtime)
        REGISTRY.register(_collector)
        _initialize_series(runtime.settings)
    enable()


def start_metrics_server(
    port: int, runtime: Any, *, host: str = "0.0.0.0", search: int = DEFAULT_PORT_SEARCH
) -> int:
    """Serves ``/metrics`` on the first free port from ``port`` (``search`` ports tried) and
    turns :func:`record_attempt` on. Returns the port bound (``port=0``: one the OS picks).

    Idempotent within a process: a second call returns the port already served.

    Raises:
        MetricsError: every port of the range is taken, or the address cannot be bound.
    """
    global _server
    with _lock:
        if _server is not None:
            return int(_server.server_address[1])
        last: OSError | None = None
        for candidate in range(port, port + max(1, search)) if port else (0,):
            try:
                server, _thread = start_http_server(candidate, addr=host, registry=REGISTRY)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise MetricsError(
                        f"metrics: cannot listen on {host}:{candidate}: {exc.strerror}"
                    ) from None
                last = exc
                continue
            break
        else:
            raise MetricsError(
                f"metrics: ports {port}-{port + max(1, search) - 1} on {host} are all in use "
                f"({last.strerror if last else 'busy'}); free one or configure another metrics.port"
            )
        _server = server
        _collect_for(runtime)
        bound = int(server.server_address[1])
    log_line(logging.INFO, "metrics server started", worker=runtime.worker_name, host=host, port=bound)
    return bound


def stop_metrics_server() -> None:
    """Stops the server, unregisters the queue collector and turns :func:`record_attempt` off
    (the OTLP export stops with telemetry, after its last export)."""
    global _server, _collector, _enabled
    with _lock:
        _enabled = False
        if _collector is not None:
            REGISTRY.unregister(_collector)
            _collector.close()
            _collector = None
        if _server is not None:
            _server.shutdown()
            _server.server_close()
            _server = None


def start_otlp_metrics(runtime: Any) -> bool:
    """Exports this registry over OTLP while telemetry is on (the queue's gauges read from Redis
    at each export, as at a scrape); False while it is off."""
    if not telemetry.enabled():
        return False
    with _lock:
        _collect_for(runtime)
    return instruments.start(_exported) is not None


def _exported() -> list[Any]:
    """The registry's own series (not the process collectors'), for the OTLP export."""
    return [family for family in REGISTRY.collect() if family.name.startswith(("webhook_", "dispatcher_"))]
