"""The process's OpenTelemetry providers, made from ``telemetry:`` (and the ``OTEL_*``
variables the config room reads).

Off -- no ``otlp_endpoint`` anywhere -- no provider, exporter or thread is made and nothing of
OpenTelemetry is imported here (redis-py imports its API on its own when it is installed), and
every hook in the flow costs one test of :func:`enabled`. On, the process has its own tracer
provider (the calling application's global provider, if it has one, is left alone; its current
span still becomes a dispatch's parent, since the context is OpenTelemetry's one global), a
batch span processor exporting over OTLP/HTTP to ``<otlp_endpoint>/v1/traces``, and -- in a
worker, which asks for one -- a metric exporter to ``<otlp_endpoint>/v1/metrics``
(:mod:`.instruments`). Exporting runs on the SDK's own threads; a collector that is away costs
one process-log line a minute and the data it did not take, never a delivery, and a stopping
process waits for it at most :data:`EXIT_SECONDS`.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config.telemetry_settings import TelemetrySettings
from ..logs import log_line

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Tracer

INSTRUMENTATION = "dispatcher"
"""The instrumentation scope every span and metric of this project is made under."""
EXIT_SECONDS = 5.0
"""At most this long, at exit or a worker's stop, for the last spans and metrics to go: a
collector that is away never holds a stopping process longer (its exports are then dropped)."""
TROUBLE_EVERY_SECONDS = 60.0
"""The process log says a collector did not take an export at most this often."""
_INSTANCE = str(uuid.uuid4())
"""This process's ``service.instance.id``."""

_lock = threading.Lock()
_settings: TelemetrySettings | None = None
_tracer: Tracer | None = None
_provider: Any = None
_stops: list[Callable[[], None]] = []
"""What :func:`on_shutdown` was given: the worker's metric export."""


def enabled() -> bool:
    """Whether this process traces (one global read: the hooks' whole cost while off)."""
    return _tracer is not None


def tracer() -> Tracer | None:
    return _tracer


def follows_parent() -> bool:
    """Whether the sampler follows a parent's decision (the ``parentbased_*`` ones)."""
    settings = _settings
    return settings is not None and settings.sampler.startswith("parentbased")


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
    """What ``config check`` and a worker at start say about ``telemetry``: an ``OTEL_*``
    variable that could not be used (the settings' own warnings), and telemetry asked for with
    OpenTelemetry not installed (the process then runs untraced)."""
    missing = [NOT_INSTALLED] if settings.enabled and not installed() else []
    return [*settings.warnings, *missing]


def configure(settings: TelemetrySettings) -> bool:
    """Makes the process's providers for ``settings`` (again only if they changed); with
    telemetry off, shuts down what an earlier configuration made. Returns whether the process
    traces. OpenTelemetry not installed: one error line, and the process runs untraced."""
    global _settings, _tracer, _provider
    with _lock:
        if settings == _settings:
            return _tracer is not None
        closers = _detach_locked()
        _settings = settings
        if settings.enabled:
            try:
                _provider = _make_tracer_provider(settings)
                _tracer = _provider.get_tracer(INSTRUMENTATION)
                _quiet_library_logs()
            except ImportError:
                log_line(logging.ERROR, f"{NOT_INSTALLED}; running untraced")
            except Exception as exc:  # noqa: BLE001 - an SDK setting (OTEL_BSP_*) it refuses: never stop dispatching
                _provider = _tracer = None
                log_line(
                    logging.ERROR,
                    "telemetry: OpenTelemetry refused its settings; running untraced",
                    error=type(exc).__name__,
                )
    if closers:  # the earlier configuration's last exports, off the lock and within the bound
        bounded(lambda: _close(closers), EXIT_SECONDS)
    return _tracer is not None


def _make_tracer_provider(settings: TelemetrySettings) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        sampler=_sampler(settings), resource=_resource(settings), shutdown_on_exit=False
    )
    assert settings.otlp_endpoint is not None
    exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _resource(settings: TelemetrySettings) -> Any:
    """``service.name``, this process's ``service.instance.id``, the SDK's own attributes, and
    the operator's ``OTEL_RESOURCE_ATTRIBUTES``: never a detector (``OTEL_EXPERIMENTAL_RESOURCE_
    DETECTORS`` is not read), since a process's command line could hold anything."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.version import __version__

    sdk = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": __version__,
        "service.instance.id": _INSTANCE,
    }
    named = Resource({"service.name": settings.service_name})
    return Resource(sdk).merge(OTELResourceDetector().detect()).merge(named)


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


def metric_exporter() -> tuple[Any, Any] | None:
    """An OTLP/HTTP metric exporter to ``<otlp_endpoint>/v1/metrics`` and the process's resource,
    for the worker's registry (:mod:`.instruments`); None while telemetry is off."""
    with _lock:
        if _tracer is None or _settings is None or _settings.otlp_endpoint is None:
            return None
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=f"{_settings.otlp_endpoint.rstrip('/')}/v1/metrics")
        return exporter, _resource(_settings)


def on_shutdown(stop: Callable[[], None]) -> None:
    """``stop`` is called when telemetry is shut down or configured anew (before the providers)."""
    with _lock:
        _stops.append(stop)


def flush(timeout_millis: int = 5000) -> None:
    """Exports the spans buffered now (a worker stopping; a test), waiting at most
    ``timeout_millis``."""
    provider = _provider
    if provider is not None:
        bounded(lambda: provider.force_flush(timeout_millis), timeout_millis / 1000)


def bounded(step: Callable[[], object], seconds: float) -> None:
    """Runs ``step`` on a daemon thread and waits for it at most ``seconds``: an exporter's own
    timeouts and retries never hold the caller longer."""
    thread = threading.Thread(target=step, name="dispatcher-telemetry-exit", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no new thread at interpreter shutdown (Python 3.12.0 and 3.12.1)
        step()
        return
    thread.join(seconds)


def forget_in_child() -> None:
    """In a worker's forked child (RQ's scheduler process), which makes no span: the parent's
    providers and export dropped without flushing, so the child exports nothing of them. Other
    forks (a pre-forking web server hosting ``dispatch()``) keep the SDK's own fork support."""
    global _tracer, _provider, _settings, _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    _tracer = _provider = _settings = None
    _stops.clear()


class _ExportTrouble(logging.Handler):
    """OpenTelemetry's own warnings (a collector refusing, timing out): one line in the process
    log at most every minute, instead of the library's text on stderr."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if time.monotonic() - self.last < TROUBLE_EVERY_SECONDS:
            return
        self.last = time.monotonic()
        log_line(
            logging.WARNING, "telemetry: the collector did not take an export; data dropped", at=record.name
        )


def _quiet_library_logs() -> None:
    """The OTLP exporters' warnings only (a collector refusing, timing out); the rest of
    OpenTelemetry's logging, a host application's included, is left as it was."""
    library = logging.getLogger("opentelemetry.exporter.otlp")
    if not any(isinstance(h, _ExportTrouble) for h in library.handlers):
        library.addHandler(_ExportTrouble())
    library.propagate = False


def shutdown_bounded(seconds: float = EXIT_SECONDS) -> None:
    """:func:`shutdown` within ``seconds`` (a worker stopping): what the collector has not taken
    by then is dropped."""
    if _provider is not None or _stops:
        bounded(shutdown, seconds)


@atexit.register
def _at_exit() -> None:
    """The process is ending: the last spans and metrics go, within :data:`EXIT_SECONDS`."""
    shutdown_bounded()


def shutdown() -> None:
    """Flushes and stops the providers (waiting for the collector: :func:`shutdown_bounded`
    waits at most a bound); telemetry is off until :func:`configure` again."""
    global _settings
    with _lock:
        closers = _detach_locked()
        _settings = None
    _close(closers)


def _detach_locked() -> list[Callable[[], object]]:
    """Telemetry off in this process at once; what must still run to close the earlier
    configuration (the metric export's last export, the span processor's), in order."""
    global _tracer, _provider
    provider, stops = _provider, list(_stops)
    _tracer = _provider = None
    _stops.clear()
    return [provider.shutdown, *stops] if provider is not None else list(stops)


def _close(closers: list[Callable[[], object]]) -> None:
    """Runs the closers side by side (a slow metrics export never starves the last spans) and
    waits for them all."""
    threads = []
    for each in closers:
        thread = threading.Thread(target=_closing, args=(each,), daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no new thread at interpreter shutdown (Python 3.12.0 and 3.12.1)
            _closing(each)
            continue
        threads.append(thread)
    for thread in threads:
        thread.join()


def _closing(closer: Callable[[], object]) -> None:
    try:
        closer()
    except Exception as exc:  # noqa: BLE001 - an exporter's failure must not stop the process
        log_line(logging.WARNING, "telemetry: shutdown incomplete", error=type(exc).__name__)
