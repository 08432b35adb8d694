"""An OTLP/HTTP collector for tests, on 127.0.0.1: it keeps every exported byte and decodes the
spans and metrics with ``opentelemetry-proto`` (the collector's own message types)."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Span:
    """One exported span, as the tests read it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    service: str
    resource: dict[str, Any]
    status_code: int


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


@dataclass
class OtlpReceiver:
    """Serves ``POST /v1/traces`` and ``POST /v1/metrics`` (protobuf, gzip or not)."""

    raw: list[bytes] = field(default_factory=list)
    """Every request body as it arrived (decompressed), traces and metrics."""
    spans: list[Span] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)
    metric_points: list[tuple[str, dict[str, Any], Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.take(self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def take(self, path: str, body: bytes) -> None:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        with self.lock:
            self.raw.append(body)
            if path == "/v1/traces":
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                self.spans.extend(_spans(request))
            elif path == "/v1/metrics":
                metrics = metrics_service_pb2.ExportMetricsServiceRequest()
                metrics.ParseFromString(body)
                self._metrics(metrics)

    def _metrics(self, request: Any) -> None:
        for resource_metrics in request.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    self.metric_names.add(metric.name)
                    kind = metric.WhichOneof("data")
                    if kind is None:  # a metric with no data points
                        continue
                    for point in getattr(metric, kind).data_points:
                        self.metric_points.append((metric.name, _attributes(point.attributes), point))

    def all_bytes(self) -> bytes:
        with self.lock:
            return b"".join(self.raw)

    def snapshot(self) -> list[Span]:
        with self.lock:
            return list(self.spans)

    def wait_for(self, done: Callable[[list[Span]], bool], timeout: float = 30.0) -> list[Span]:
        """Waits until ``done(spans)``; the spans so far either way."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.snapshot()
            if done(spans):
                return spans
            time.sleep(0.1)
        return self.snapshot()


def _spans(request: Any) -> list[Span]:
    out = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                out.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        attributes=_attributes(span.attributes),
                        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                        service=str(resource.get("service.name", "")),
                        resource=resource,
                        status_code=span.status.code,
                    )
                )
    return out
