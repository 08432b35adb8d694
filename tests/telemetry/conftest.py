"""Telemetry on, exporting to a real OTLP/HTTP collector on 127.0.0.1 (``tests/otlp_receiver.py``),
and the helpers the telemetry tests read its spans with. Every test that turns telemetry on turns
it off again, whatever happens: the providers are the process's own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from dispatcher import telemetry
from dispatcher.config.telemetry_settings import TelemetrySettings
from dispatcher.logs import process_logger
from tests.otlp_receiver import OtlpReceiver, Span

INTERNAL = trace_pb2.Span.SPAN_KIND_INTERNAL
SERVER = trace_pb2.Span.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
PRODUCER = trace_pb2.Span.SPAN_KIND_PRODUCER
CONSUMER = trace_pb2.Span.SPAN_KIND_CONSUMER
UNSET = trace_pb2.Status.STATUS_CODE_UNSET
ERROR = trace_pb2.Status.STATUS_CODE_ERROR


def settings_for(receiver: OtlpReceiver, **given: Any) -> TelemetrySettings:
    """Telemetry exporting to ``receiver`` (the defaults otherwise: what a runtime whose
    ``telemetry:`` names only ``otlp_endpoint`` resolves to)."""
    return TelemetrySettings(otlp_endpoint=receiver.url, **given)


@contextmanager
def collecting() -> Iterator[OtlpReceiver]:
    """A new collector, telemetry left as it is; after the block, telemetry is off (whatever the
    block configured) and the collector stopped."""
    receiver = OtlpReceiver().start()
    try:
        yield receiver
    finally:
        telemetry.shutdown()
        receiver.stop()


@pytest.fixture
def collector() -> Iterator[OtlpReceiver]:
    """:func:`collecting` around a test (``tests/worker/test_tracing.py`` defines its own from it)."""
    with collecting() as receiver:
        yield receiver


@pytest.fixture
def traced(collector: OtlpReceiver) -> OtlpReceiver:
    """Telemetry on, exporting to a new collector; off again and the collector stopped after."""
    assert telemetry.configure(settings_for(collector)) is True
    return collector


def exported(receiver: OtlpReceiver) -> list[Span]:
    """Every span the process has ended, once the batch processor has exported them all (the
    exporter returns once the collector has answered, so nothing is still on its way)."""
    telemetry.flush()
    return receiver.snapshot()


def only(spans: list[Span], name: str) -> Span:
    """The one span called ``name``."""
    (span,) = [s for s in spans if s.name == name]
    return span


def ids(span: Span) -> tuple[str, str, bool]:
    """An exported span's (trace id, span id, sampled), to compare with :func:`carried`."""
    return span.trace_id, span.span_id, True


def carried(text: str) -> tuple[str, str, bool]:
    """(trace id, span id, sampled) of a W3C ``traceparent`` -- or of a job's carrier, whose
    first line it is; the other flags (SDK 1.4x sets W3C level 2's "random") are not compared."""
    version, trace_id, span_id, flags = text.split("\n")[0].split("-")
    assert version == "00" and len(flags) == 2, text
    return trace_id, span_id, bool(int(flags, 16) & 1)


class ProcessLog(logging.Handler):
    """What ``log_line`` writes to the process log while a test runs (the process logger
    propagates to the root logger until a runtime starts its log: caplog would see lines twice)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, containing: str = "") -> list[str]:
        return [r.getMessage() for r in self.records if containing in r.getMessage()]

    def levels(self, containing: str = "") -> list[int]:
        return [r.levelno for r in self.records if containing in r.getMessage()]


@pytest.fixture
def process_log() -> Iterator[ProcessLog]:
    logger = process_logger()
    handler, level = ProcessLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
