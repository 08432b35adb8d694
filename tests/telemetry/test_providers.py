"""The process's providers (``dispatcher/telemetry/providers.py``), exporting to a real OTLP/HTTP
collector: off until configured, made again only when the settings change, each sampler as
OpenTelemetry names it, ``service.name`` in the resource, and OpenTelemetry missing as one line
in the process log while the process runs untraced."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher import CATALOGUE, dispatch, queue, telemetry
from dispatcher.config.telemetry_settings import TelemetrySettings
from dispatcher.telemetry import providers
from dispatcher.telemetry.spans import context_of
from tests.conftest import ROOT
from tests.otlp_receiver import OtlpReceiver
from tests.telemetry.conftest import ProcessLog, exported, only, settings_for

TRACE_EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
REMOTE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"
"""A caller's trace and span, without the flags (``-01`` sampled, ``-00`` not)."""


def test_a_process_is_off_until_configured_and_imports_nothing_of_opentelemetry() -> None:
    """A fresh interpreter: every hook of the room runs at the cost of a test of enabled()."""
    probe = """
import json, sys
from dispatcher import telemetry
from dispatcher.telemetry import instruments, providers
said = {
    "enabled": telemetry.enabled(),
    "tracer": providers.tracer() is None,
    "meters": providers.meter_provider() is None,
    "dispatch": telemetry.dispatch_traces({0: "order_changed"}) is None,
    "deliver": telemetry.start_deliver(None, None, request_id="r", endpoint="e", attempt=1) is None,
    "context": telemetry.current_context() is None,
    "instruments": instruments.start(lambda: []) is None,
}
with telemetry.server_span("POST", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) as span:
    span.answered(202, "/v1/events")
    said["server"] = span.span is None
telemetry.flush()
said["imported"] = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
print(json.dumps(said))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    said = json.loads(done.stdout)
    assert said.pop("imported") == []
    assert said == {
        "enabled": False,
        "tracer": True,
        "meters": True,
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

    assert not telemetry.enabled() and providers.tracer() is None and providers.meter_provider() is None
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


def test_service_name_is_in_the_resource_and_no_process_detail_is(collector: OtlpReceiver) -> None:
    assert telemetry.configure(settings_for(collector, service_name="baremeds-dispatch")) is True
    tracer = providers.tracer()
    assert tracer is not None
    tracer.start_span("named").end()

    span = only(exported(collector), "named")
    assert span.service == span.resource["service.name"] == "baremeds-dispatch"
    assert span.resource["telemetry.sdk.language"] == "python"
    # no process detector: a command line or an environment could hold anything
    assert not [key for key in span.resource if key.startswith(("process.", "host.", "os."))]


def test_the_meter_provider_is_made_once_and_only_while_on(collector: OtlpReceiver) -> None:
    assert providers.meter_provider() is None
    assert telemetry.configure(settings_for(collector)) is True
    made = providers.meter_provider()
    assert made is not None and providers.meter_provider() is made

    telemetry.shutdown()

    assert providers.meter_provider() is None and not telemetry.enabled()


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
    assert not telemetry.enabled() and providers.tracer() is None and providers.meter_provider() is None
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
    assert not telemetry.enabled() and providers.meter_provider() is None

    (request_id,) = dispatch("order_changed", copy.deepcopy(CATALOGUE["order_changed"].example()))

    assert runtime.queue.job_ids == [request_id]
    assert queue.traces(runtime.queue, [request_id]) == {request_id: (None, None)}
    telemetry.flush()
    assert collector.all_bytes() == b""
