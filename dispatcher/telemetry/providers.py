"""The process's OpenTelemetry providers, made from ``telemetry:`` (and the ``OTEL_*``
variables the config room reads).

Off -- no ``otlp_endpoint`` anywhere -- no provider, exporter or thread is made and nothing of
OpenTelemetry is imported here (redis-py imports its API on its own when it is installed), and
every hook in the flow costs one test of :func:`enabled`. On, the process has its own tracer provider (the
calling application's global provider, if it has one, is left alone; its current span still
becomes a dispatch's parent, since the context is OpenTelemetry's one global), a batch span
processor exporting over OTLP/HTTP to ``<otlp_endpoint>/v1/traces``, and -- in a worker, which
asks for them -- metrics exported to ``<otlp_endpoint>/v1/metrics``. Exporting runs on the SDK's
own threads; a collector that is away costs a warning in the SDK's log, never a delivery.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import TYPE_CHECKING, Any

from ..config.telemetry_settings import TelemetrySettings
from ..logs import log_line

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer

INSTRUMENTATION = "dispatcher"
"""The instrumentation scope every span and metric of this project is made under."""

_lock = threading.Lock()
_settings: TelemetrySettings | None = None
_tracer: Tracer | None = None
_provider: Any = None
_meter_provider: Any = None


def enabled() -> bool:
    """Whether this process traces (one global read: the hooks' whole cost while off)."""
    return _tracer is not None


def tracer() -> Tracer | None:
    return _tracer


NOT_INSTALLED = (
    "telemetry: otlp_endpoint is set but OpenTelemetry is not installed; "
    "pip install 'baremeds-webhook-dispatcher[otel]'"
)


def installed() -> bool:
    """Whether the otel extra's SDK and OTLP/HTTP exporter can be imported (nothing imported)."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http")
        )
    except ModuleNotFoundError:  # a parent package missing
        return False


def warnings(settings: TelemetrySettings) -> list[str]:
    """What ``config check`` and a worker at start say about ``telemetry``: asked for, and
    OpenTelemetry not installed (the process then runs untraced)."""
    return [NOT_INSTALLED] if settings.enabled and not installed() else []


def configure(settings: TelemetrySettings) -> bool:
    """Makes the process's providers for ``settings`` (again only if they changed); with
    telemetry off, shuts down what an earlier configuration made. Returns whether the process
    traces. OpenTelemetry not installed: one error line, and the process runs untraced."""
    global _settings, _tracer, _provider
    with _lock:
        if settings == _settings:
            return _tracer is not None
        _shutdown_locked()
        _settings = settings
        if not settings.enabled:
            return False
        try:
            _provider = _make_tracer_provider(settings)
        except ImportError:
            log_line(logging.ERROR, f"{NOT_INSTALLED}; running untraced")
            return False
        _tracer = _provider.get_tracer(INSTRUMENTATION)
        return True


def _make_tracer_provider(settings: TelemetrySettings) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(sampler=_sampler(settings), resource=_resource(settings))
    assert settings.otlp_endpoint is not None
    exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _resource(settings: TelemetrySettings) -> Any:
    """``service.name`` and the SDK's own attributes (plus ``OTEL_RESOURCE_ATTRIBUTES``, the
    operator's): no process detector, whose command line could hold anything."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": settings.service_name})


def _sampler(settings: TelemetrySettings) -> Any:
    from opentelemetry.sdk.trace import sampling

    ratio = sampling.TraceIdRatioBased(settings.ratio)
    return {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBased(ratio),
    }[settings.sampler]


def current_meter_provider() -> Any:
    """The meter provider made by :func:`meter_provider` and not shut down since, else None."""
    return _meter_provider


def meter_provider() -> Any:
    """The process's meter provider exporting to ``<otlp_endpoint>/v1/metrics``, made on the
    first call (a worker's); None while telemetry is off."""
    global _meter_provider
    with _lock:
        if _tracer is None or _settings is None or _settings.otlp_endpoint is None:
            return None
        if _meter_provider is None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            exporter = OTLPMetricExporter(endpoint=f"{_settings.otlp_endpoint.rstrip('/')}/v1/metrics")
            reader = PeriodicExportingMetricReader(exporter)
            _meter_provider = MeterProvider(metric_readers=[reader], resource=_resource(_settings))
        return _meter_provider


def flush(timeout_millis: int = 5000) -> None:
    """Exports what is buffered now (a worker stopping; a test)."""
    provider, meters = _provider, _meter_provider
    if provider is not None:
        provider.force_flush(timeout_millis)
    if meters is not None:
        meters.force_flush(timeout_millis)


def shutdown() -> None:
    """Flushes and stops the providers; telemetry is off until :func:`configure` again."""
    global _settings
    with _lock:
        _shutdown_locked()
        _settings = None


def _shutdown_locked() -> None:
    global _tracer, _provider, _meter_provider
    provider, meters = _provider, _meter_provider
    _tracer = _provider = _meter_provider = None
    for each in (provider, meters):
        if each is not None:
            try:
                each.shutdown()
            except Exception as exc:  # noqa: BLE001 - an exporter's failure must not stop the process
                log_line(logging.WARNING, "telemetry: shutdown incomplete", error=type(exc).__name__)
