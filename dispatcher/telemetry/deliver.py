"""A worker's spans: ``deliver`` for one attempt of one delivery, and inside it ``POST``, the
HTTP client span with the semantic conventions' attributes (``url.full`` without credentials or
query). The ``deliver`` span starts on a sender thread as the POST is about to go and ends where
the attempt's outcome is decided."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import providers
from .spans import Value, attributes, carrier, context_of, quiet
from .urls import server_address, url_full


@dataclass
class DeliverSpan:
    """One attempt's ``deliver`` span."""

    span: Any

    @quiet("")
    def carrier(self) -> str:
        """Its context as a job carries it: the next attempt's span links to it."""
        return carrier(self.span)

    @quiet(None)
    def end(self, outcome: str, error_type: str | None = None) -> None:
        """Ends the span with the attempt's outcome as the log names it (and ``error.type`` for
        an attempt that failed before any POST)."""
        from opentelemetry.trace import StatusCode

        self.span.set_attributes(attributes({"webhook.outcome": outcome, "error.type": error_type}))
        if outcome == "failed":
            self.span.set_status(StatusCode.ERROR)
        self.span.end()

    @contextmanager
    def post(self, url: str, headers: MutableMapping[str, str] | None) -> Iterator[HttpSpan]:
        """The ``POST`` client span around one request to ``url``; with ``headers``, this span's
        W3C ``traceparent`` is added to them (an endpoint with ``propagate_trace: true``)."""
        http = _start_post(self, url, headers)
        try:
            yield http
        finally:
            http.end()


@quiet(None)
def start_deliver(
    dispatch: str | None, previous: str | None, *, request_id: str, endpoint: str, attempt: int
) -> DeliverSpan | None:
    """Starts an attempt's ``deliver`` span: a child of the ``dispatch`` span whose context the
    job carries, linked to the ``previous`` attempt's span. A job with no dispatch context
    (dispatched with telemetry off, made again by reconcile) makes its first attempt's span a
    trace of its own and each later attempt's its child. None while telemetry is off, and for
    an event its dispatching process did not sample (a ``parentbased_*`` sampler would drop the
    span anyway: nothing is built for it)."""
    tracer = providers.tracer()
    if tracer is None or (providers.follows_parent() and not_sampled(dispatch or previous)):
        return None
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, SpanKind, get_current_span

    before = context_of(previous)
    parent = context_of(dispatch) or before or Context()  # no dispatch span: its attempts share a trace
    links = [Link(get_current_span(before).get_span_context())] if before is not None else []
    given: dict[str, Value | None] = {
        "webhook.request_id": request_id,
        "webhook.endpoint": endpoint,
        "webhook.attempt": attempt,
        "webhook.retry": attempt > 1,
    }
    span = tracer.start_span(
        "deliver", context=parent, kind=SpanKind.CONSUMER, attributes=attributes(given), links=links
    )
    return DeliverSpan(span)


def not_sampled(traceparent: str | None) -> bool:
    """Whether a ``traceparent`` (``00-<trace>-<span>-<flags>``) says its trace is not sampled;
    False when there is none, or it cannot be read."""
    if not traceparent or len(traceparent) < 55:
        return False
    try:
        return not int(traceparent[53:55], 16) & 1
    except ValueError:
        return False


class HttpSpan:
    """One POST's client span (or nothing, when it could not start)."""

    def __init__(self, span: Any) -> None:
        self.span = span

    @quiet(None)
    def result(self, status: int | None, failure: str | None) -> None:
        """The partner's status code, and ``error.type``: the failure's kind (``timeout``,
        ``connection_error``...) or the status code from 400 up -- never a reason phrase."""
        if self.span is None:
            return
        from opentelemetry.trace import StatusCode

        error = failure or (str(status) if status is not None and status >= 400 else None)
        given = {"http.response.status_code": status, "error.type": error}
        self.span.set_attributes(attributes(given))
        if error is not None:
            self.span.set_status(StatusCode.ERROR)

    @quiet(None)
    def end(self) -> None:
        if self.span is not None:
            self.span.end()


@quiet(HttpSpan(None))
def _start_post(deliver: DeliverSpan, url: str, headers: MutableMapping[str, str] | None) -> HttpSpan:
    tracer = providers.tracer()
    if tracer is None:
        return HttpSpan(None)
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    address, port = server_address(url)
    given: dict[str, Value | None] = {
        "http.request.method": "POST",
        "server.address": address,
        "server.port": port,
        "url.full": url_full(url),
    }
    span = tracer.start_span(
        "POST",
        context=trace.set_span_in_context(deliver.span),
        kind=SpanKind.CLIENT,
        attributes=attributes(given),
    )
    if headers is not None:
        headers["traceparent"] = carrier(span)
    return HttpSpan(span)
