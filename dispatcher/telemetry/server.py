"""The HTTP API's server spans: one per request, a child of the caller's W3C ``traceparent``
when it sends one, so a service in another language sees its event's whole trace. The span is
current while the request runs: a dispatch made for it becomes its child."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from . import providers
from .spans import attributes, context_from_headers, quiet

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
"""The methods a span names as they are; any other is ``_OTHER`` (the HTTP semantic conventions)."""


class ServerSpan:
    """A request's span (or nothing while telemetry is off)."""

    def __init__(self, span: Any) -> None:
        self.span = span

    @quiet(None)
    def answered(self, status: int, route: str | None) -> None:
        """The answer's status code, and the route's template (``/v1/deliveries/{id}``: never
        the path itself) in the span's name."""
        if self.span is None:
            return
        from opentelemetry.trace import StatusCode

        given = {"http.response.status_code": status, "http.route": route}
        self.span.set_attributes(attributes(given))
        if route is not None:
            self.span.update_name(f"{self.span.name} {route}")
        if status >= 500:
            self.span.set_status(StatusCode.ERROR)
            self.span.set_attributes(attributes({"error.type": str(status)}))


@contextmanager
def server_span(method: str, headers: Mapping[str, str]) -> Iterator[ServerSpan]:
    """A request's server span, current inside the block; nothing while telemetry is off."""
    tracer = providers.tracer()
    if tracer is None:
        yield ServerSpan(None)
        return
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    method = method if method in METHODS else "_OTHER"  # a client's own word never enters a trace
    parent = context_from_headers(headers)  # its traceparent alone: a client's tracestate is not read
    given = attributes({"http.request.method": method})
    span = tracer.start_span(
        "HTTP" if method == "_OTHER" else method, context=parent, kind=SpanKind.SERVER, attributes=given
    )
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        yield ServerSpan(span)
