"""The process's providers (``dispatcher/telemetry/providers.py``), exporting to a real OTLP/HTTP
collector: off until configured (no provider, exporter or thread), made again only when the
settings change, each sampler as OpenTelemetry names it, a resource of exactly the service, its
instance, the SDK and ``OTEL_RESOURCE_ATTRIBUTES``, the worker's metric exporter only while on,
a collector that never answers holding a flush, a stop or the process's exit no longer than
:data:`~dispatcher.telemetry.providers.EXIT_SECONDS`, and OpenTelemetry missing as one line in
the process log while the process runs untraced."""

from __future__ import annotations

import copy
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry.sdk.version import __version__ as SDK_VERSION
from prometheus_client.core import GaugeMetricFamily

from dispatcher import CATALOGUE, dispatch, queue, telemetry
from dispatcher.config.telemetry_settings import TelemetrySettings
from dispatcher.telemetry import instruments, providers
from dispatcher.telemetry.spans import context_of
from tests.conftest import ROOT, wait_for
from tests.otlp_receiver import OtlpReceiver
from tests.telemetry.conftest import ProcessLog, exported, only, settings_for

TRACE_EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
REMOTE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"
"""A caller's trace and span, without the flags (``-01`` sampled, ``-00`` not)."""


PROBE = """
import json, sys, threading
PRELUDE
from dispatcher import telemetry
from dispatcher.telemetry import instruments, providers
said = {
    "enabled": telemetry.enabled(),
    "tracer": providers.tracer() is None,
    "metric_exporter": providers.metric_exporter() is None,
    "dispatch": telemetry.dispatch_traces({0: "order_changed"}) is None,
    "deliver": telemetry.start_deliver(None, None, request_id="r", endpoint="e", attempt=1) is None,
    "context": telemetry.current_context() is None,
    "instruments": instruments.start(lambda: []) is None and instruments.current() is None,
}
with telemetry.server_span("POST", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) as span:
    span.answered(202, "/v1/events")
    said["server"] = span.span is None
telemetry.flush()
telemetry.shutdown_bounded()
said["threads"] = [t.name for t in threading.enumerate()]
said["imported"] = sorted(
    m for m in sys.modules
    if m == "opentelemetry.sdk.trace" or m.startswith(("opentelemetry.sdk.trace.", "opentelemetry.exporter"))
)
print(json.dumps(said))
"""


@pytest.mark.parametrize("prelude", ["", "import redis"])
def test_while_off_there_is_no_provider_exporter_or_thread(prelude: str) -> None:
    """A fresh interpreter calls every hook of the room: each is a test of enabled(). redis-py
    (when installed) imports parts of OpenTelemetry on its own; the tracing SDK and the OTLP
    exporters are never imported while off, by the dispatcher or because of it."""
    probe = PROBE.replace("PRELUDE", prelude)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    said = json.loads(done.stdout)
    assert said.pop("imported") == []
    assert said.pop("threads") == ["MainThread"]
    assert said == {
        "enabled": False,
        "tracer": True,
        "metric_exporter": True,
        "dispatch": True,
        "deliver": True,
        "context": True,
        "instruments": True,
        "server": True,
    }


def test_configuring_off_after_on_shuts_down_and_exports_what_was_buffered(collector: OtlpReceiver) -> None:
    assert telemetry.configure(settings_for(collector)) is True
    assert telemetry.enabled() and providers.tracer() is not None
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span("before-off").end()

    assert telemetry.configure(TelemetrySettings()) is False

    assert not telemetry.enabled() and providers.tracer() is None and providers.metric_exporter() is None
    assert [s.name for s in collector.snapshot()] == ["before-off"]  # shutting down flushed it
    assert telemetry.dispatch_traces({0: "order_changed"}) is None


def test_the_same_settings_again_keep_the_tracer_and_new_ones_make_another(traced: OtlpReceiver) -> None:
    first = providers.tracer()

    assert telemetry.configure(settings_for(traced)) is True  # equal settings, another object
    assert providers.tracer() is first

    assert telemetry.configure(settings_for(traced, service_name="pharmacy-sender")) is True
    second = providers.tracer()
    assert second is not None and second is not first
    second.start_span("after").end()
    assert only(exported(traced), "after").service == "pharmacy-sender"


@pytest.mark.parametrize(
    ("sampler", "ratio", "sampled"),
    [
        ("always_on", 1.0, True),
        ("always_off", 1.0, False),
        ("traceidratio", 1.0, True),
        ("traceidratio", 0.0, False),
        ("parentbased_always_on", 1.0, True),
        ("parentbased_always_off", 1.0, False),
        ("parentbased_traceidratio", 1.0, True),
        ("parentbased_traceidratio", 0.0, False),
    ],
)
def test_each_sampler_decides_a_new_trace_as_named(
    traced: OtlpReceiver, sampler: str, ratio: float, sampled: bool
) -> None:
    assert telemetry.configure(settings_for(traced, sampler=sampler, ratio=ratio)) is True
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span("root").end()

    assert [s.name for s in exported(traced)] == (["root"] if sampled else [])


@pytest.mark.parametrize(
    ("sampler", "ratio", "flags", "sampled"),
    [
        ("parentbased_always_on", 1.0, "00", False),
        ("parentbased_always_off", 1.0, "01", True),
        ("parentbased_traceidratio", 0.0, "01", True),
        ("parentbased_traceidratio", 1.0, "00", False),
        ("traceidratio", 0.0, "01", False),
        ("always_on", 1.0, "00", True),
    ],
)
def test_a_parent_based_sampler_follows_the_callers_decision(
    traced: OtlpReceiver, sampler: str, ratio: float, flags: str, sampled: bool
) -> None:
    assert telemetry.configure(settings_for(traced, sampler=sampler, ratio=ratio)) is True
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span("child", context=context_of(f"{REMOTE}-{flags}")).end()

    assert [s.name for s in exported(traced)] == (["child"] if sampled else [])


RESOURCE = {
    "service.name",
    "service.instance.id",
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
}
"""Every key of the resource when ``OTEL_RESOURCE_ATTRIBUTES`` is not set."""


def _resource_of(collector: OtlpReceiver, name: str = "named", **given: object) -> dict[str, object]:
    """The resource a span called ``name`` is exported under, telemetry configured with ``given``."""
    assert telemetry.configure(settings_for(collector, **given)) is True
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span(name).end()
    return only(exported(collector), name).resource


def test_the_resource_is_the_service_its_instance_and_the_sdk_and_no_detector_adds_to_it(
    collector: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No detector runs, even when asked: a command line or an environment could hold anything."""
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "process,os,host")

    resource = _resource_of(collector, service_name="baremeds-dispatch")

    assert set(resource) == RESOURCE
    assert resource["service.name"] == "baremeds-dispatch"
    assert (resource["telemetry.sdk.language"], resource["telemetry.sdk.name"]) == ("python", "opentelemetry")
    assert resource["telemetry.sdk.version"] == SDK_VERSION
    instance = str(resource["service.instance.id"])
    assert str(uuid.UUID(instance)) == instance
    again = _resource_of(collector, "again", service_name="pharmacy-sender")  # configured anew
    assert again["service.instance.id"] == instance  # the same process


def test_otel_resource_attributes_are_added_and_the_settings_service_name_wins(
    collector: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment=staging,team=pharmacy,service.name=from-attributes",
    )
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "process")

    resource = _resource_of(collector, service_name="baremeds-dispatch")

    assert set(resource) == RESOURCE | {"deployment.environment", "team"}
    assert (resource["deployment.environment"], resource["team"]) == ("staging", "pharmacy")
    assert resource["service.name"] == "baremeds-dispatch"


def test_the_metric_exporter_is_made_only_while_on_for_v1_metrics_under_the_same_resource(
    collector: OtlpReceiver,
) -> None:
    assert providers.metric_exporter() is None
    resource_of_spans = _resource_of(collector)
    made = providers.metric_exporter()
    assert made is not None
    exporter, resource = made
    family = GaugeMetricFamily("dispatcher_probe", "A probe.", labels=["queue"])
    family.add_metric(["default"], 3.0)
    try:
        assert exporter.export(instruments.metrics_data([family], resource, 1, 2)).value == 0  # SUCCESS
    finally:
        exporter.shutdown()

    assert collector.metric_names == {"dispatcher_probe"}  # it went to <otlp_endpoint>/v1/metrics
    assert dict(resource.attributes) == resource_of_spans
    telemetry.shutdown()
    assert providers.metric_exporter() is None


def test_what_on_shutdown_was_given_runs_once_when_configured_anew_or_shut_down(
    collector: OtlpReceiver, process_log: ProcessLog
) -> None:
    assert telemetry.configure(settings_for(collector)) is True
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("collector said: patient Jane Doe")

    providers.on_shutdown(lambda: calls.append("first"))
    providers.on_shutdown(broken)
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span("buffered").end()

    assert telemetry.configure(settings_for(collector, service_name="again")) is True
    assert calls == ["first"]
    assert [s.name for s in collector.snapshot()] == ["buffered"]  # the provider shut down all the same
    assert process_log.lines("shutdown") == ["telemetry: shutdown incomplete error=RuntimeError"]

    providers.on_shutdown(lambda: calls.append("second"))
    telemetry.shutdown()
    telemetry.shutdown()
    assert calls == ["first", "second"]
    assert "Jane" not in " ".join(process_log.lines())


class Silent:
    """A collector that accepts every connection and never answers (a hung collector, or a proxy
    in front of one) -- until :attr:`released`, when each request held gets a 200."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.accepted: list[socket.socket] = []
        self.released = threading.Event()
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.accepted.append(conn)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        self.released.wait()
        conn.settimeout(30)
        with conn, conn.makefile("rb") as requests:
            try:
                while requests.readline():  # the request line, then its headers and body
                    length = 0
                    while (header := requests.readline()) not in (b"\r\n", b""):
                        name, _, value = header.partition(b":")
                        length = int(value) if name.strip().lower() == b"content-length" else length
                    requests.read(length)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            except OSError:  # the exporter gave up on it
                pass

    def close(self) -> None:
        self.released.set()
        self.closed.set()
        self.server.close()


@contextmanager
def never_answering() -> Iterator[Silent]:
    """Telemetry on, exporting to a :class:`Silent` collector; after the block, the requests held
    answered, telemetry off, and no bounded step of ours still running."""
    silent = Silent()
    try:
        assert telemetry.configure(TelemetrySettings(otlp_endpoint=silent.url)) is True
        yield silent
    finally:
        silent.released.set()
        telemetry.shutdown()
        wait_for(
            lambda: not [t for t in threading.enumerate() if t.name == "dispatcher-telemetry-exit"],
            message="the bounded steps to end",
        )
        silent.close()


def test_a_collector_that_never_answers_holds_a_flush_or_a_stop_no_longer_than_the_bound() -> None:
    """The exporter would wait 10 s per request (its default timeout): a flush, and a worker's
    stop with its metric export running, each return within the bound all the same."""
    bound = providers.EXIT_SECONDS + 2
    with never_answering() as silent:
        tracer = providers.tracer()
        assert tracer is not None and instruments.start(lambda: []) is not None
        tracer.start_span("flushed").end()
        began = time.monotonic()
        telemetry.flush()
        flushed = time.monotonic() - began
        wait_for(lambda: silent.accepted, message="the export to reach the collector")
        tracer.start_span("left-for-the-stop").end()  # the stop's own export, besides the metrics'
        began = time.monotonic()
        telemetry.shutdown_bounded()
        stopped = time.monotonic() - began
        assert not telemetry.enabled() and instruments.current() is None

    assert flushed < bound and stopped < bound, (flushed, stopped)


EXITING = """
import sys, time
from dispatcher import telemetry
from dispatcher.config.telemetry_settings import TelemetrySettings
from dispatcher.telemetry import providers
assert telemetry.configure(TelemetrySettings(otlp_endpoint=sys.argv[1]))
providers.tracer().start_span("last-words").end()
print(time.monotonic(), flush=True)
"""
"""A process that ends a span and exits without stopping telemetry: it prints when it exits."""


def _exit_seconds(url: str) -> float:
    """How long a process took from the end of its script to its end, exporting to ``url``
    (CLOCK_MONOTONIC is the system's: the child's reading compares with ours)."""
    done = subprocess.run(
        [sys.executable, "-c", EXITING, url], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    return time.monotonic() - float(done.stdout)


def test_at_exit_a_collector_that_never_answers_holds_the_process_no_longer_than_the_bound() -> None:
    silent = Silent()
    try:
        seconds = _exit_seconds(silent.url)
        wait_for(lambda: silent.accepted, message="the last export to reach the collector")
    finally:
        silent.close()

    assert seconds < providers.EXIT_SECONDS + 2, seconds


def test_at_exit_the_last_spans_go_under_the_processs_own_instance(traced: OtlpReceiver) -> None:
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span("here").end()

    assert _exit_seconds(traced.url) < providers.EXIT_SECONDS + 2

    spans = exported(traced)
    there, here = only(spans, "last-words"), only(spans, "here")
    assert there.service == "dispatcher"
    assert there.resource["service.instance.id"] != here.resource["service.instance.id"]


def _log_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_opentelemetry_missing_makes_configure_false_with_one_error_line(
    collector: OtlpReceiver, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, TRACE_EXPORTER, None)  # `import` of it raises ImportError

    assert telemetry.configure(settings_for(collector)) is False
    assert telemetry.configure(settings_for(collector)) is False  # the same settings: said once

    assert process_log.lines() == [
        "telemetry: otlp_endpoint is set but OpenTelemetry is not installed; "
        "pip install 'baremeds-webhook-dispatcher[otel]'; running untraced"
    ]
    assert process_log.levels() == [logging.ERROR]
    assert not telemetry.enabled() and providers.tracer() is None and providers.metric_exporter() is None
    assert telemetry.dispatch_traces({0: "order_changed"}) is None


def test_opentelemetry_missing_is_one_error_line_and_dispatch_runs_untraced(
    collector: OtlpReceiver, make_runtime, redis_client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``otlp_endpoint`` set where the [otel] extra is not installed: the runtime's start says
    so once, in the process log, and events are dispatched and queued as ever."""
    monkeypatch.setitem(sys.modules, TRACE_EXPORTER, None)  # `import` of it raises ImportError

    runtime = make_runtime(
        telemetry={"otlp_endpoint": collector.url},
        endpoints=[{"name": "pharmacy", "url": "http://127.0.0.1:9/hooks", "key": "k3y-providers-1"}],
    )
    assert runtime.settings.telemetry == settings_for(collector)
    assert telemetry.configure(runtime.settings.telemetry) is False  # asked again: no second line

    lines = [line for line in _log_lines(Path(runtime.settings.process_log)) if "telemetry" in line]
    assert len(lines) == 1, lines
    assert " ERROR telemetry: otlp_endpoint is set but OpenTelemetry is not installed" in lines[0]
    assert "pip install 'baremeds-webhook-dispatcher[otel]'" in lines[0]
    assert collector.url not in lines[0]
    assert not telemetry.enabled() and providers.metric_exporter() is None

    (request_id,) = dispatch("order_changed", copy.deepcopy(CATALOGUE["order_changed"].example()))

    assert runtime.queue.job_ids == [request_id]
    assert queue.traces(runtime.queue, [request_id]) == {request_id: (None, None)}
    telemetry.flush()
    assert collector.all_bytes() == b""


def test_sdk_settings_it_refuses_run_untraced_and_never_raise(
    collector: OtlpReceiver, process_log: ProcessLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host application's OTEL_BSP_* the SDK refuses (a queue of 0) never stops dispatching."""
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "0")

    assert telemetry.configure(settings_for(collector)) is False

    assert process_log.lines() == [
        "telemetry: OpenTelemetry refused its settings; running untraced error=ValueError"
    ]
    assert not telemetry.enabled() and telemetry.dispatch_traces({0: "order_changed"}) is None


def test_a_workers_forked_child_forgets_the_parents_telemetry(traced: OtlpReceiver) -> None:
    """RQ's scheduler process (forked by the worker) exports nothing of the worker's: what
    forget_in_child leaves is telemetry off, no export, and a lock nobody holds."""
    from dispatcher.telemetry import instruments

    assert instruments.start(lambda: []) is not None
    with providers._lock:  # as if another thread held it at the fork
        telemetry.forget_in_child()
    assert not telemetry.enabled() and instruments.current() is None
    assert providers._lock.acquire(timeout=1)
    providers._lock.release()
