"""The spans of an event's trace, and the only attributes they may carry.

``dispatch`` (the caller's process; a child of its current span, or of the HTTP API request's)
-> per delivery and attempt, ``deliver`` (a worker; a child of ``dispatch`` through the context
its job carries, linked to the attempt before) -> ``POST``, the HTTP client span. Every
attribute goes through :func:`attributes`, which refuses a name not in :data:`ATTRIBUTES`: no
payload value, partner answer, reason phrase, error message or secret has a name to go under.
Nothing here raises into the flow: a failure of telemetry is logged once per kind and dropped.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

from ..logs import log_line
from . import providers

ATTRIBUTES = frozenset(
    {
        "webhook.event",
        "webhook.deliveries",
        "webhook.request_id",
        "webhook.endpoint",
        "webhook.attempt",
        "webhook.outcome",
        "webhook.retry",
        "http.request.method",
        "http.response.status_code",
        "http.route",
        "server.address",
        "server.port",
        "url.full",
        "error.type",
    }
)
"""Every attribute a span of this project may carry."""

Value = str | int | bool
P = ParamSpec("P")
T = TypeVar("T")
_warned: set[str] = set()


def quiet(default: Any) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """The hook returns ``default`` instead of raising: telemetry never fails the flow."""

    def wrap(function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def quiet(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - telemetry must never fail a dispatch or a delivery
                if function.__name__ not in _warned:
                    _warned.add(function.__name__)
                    log_line(
                        logging.WARNING,
                        "telemetry: span dropped",
                        at=function.__name__,
                        error=type(exc).__name__,
                    )
                return default  # type: ignore[no-any-return]

        return quiet

    return wrap


def attributes(given: Mapping[str, Value | None]) -> dict[str, Value]:
    """``given`` without its None values, every name checked against :data:`ATTRIBUTES`."""
    for name in given:
        if name not in ATTRIBUTES:
            raise ValueError(f"span attribute {name!r} is not in telemetry.spans.ATTRIBUTES")
    return {name: value for name, value in given.items() if value is not None}


@functools.cache
def _propagator() -> Any:
    """W3C trace context, made once (the hooks ask for it per span)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def carrier(span: Any) -> str:
    """A span's context as the text a job carries and a partner may be sent: its W3C
    ``traceparent``. Never a ``tracestate``: a caller's (an API client's, the host
    application's) could hold anything, and it would travel to partners and collectors."""
    from opentelemetry import trace

    headers: dict[str, str] = {}
    _propagator().inject(headers, context=trace.set_span_in_context(span))
    return headers.get("traceparent", "")


def context_of(text: str | None) -> Any:
    """The context a :func:`carrier` line (a ``traceparent``) holds, or None when it holds none."""
    if not text:
        return None
    return context_from_headers({"traceparent": text.partition("\n")[0]})


def context_from_headers(headers: Mapping[str, str]) -> Any:
    """The context a ``traceparent`` header names (any ``tracestate`` is not read), or None."""
    from opentelemetry import trace
    from opentelemetry.context import Context

    traceparent = headers.get("traceparent")
    if not traceparent:
        return None
    context = _propagator().extract({"traceparent": traceparent}, context=Context())
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def without_state(context: Any) -> Any:
    """``context`` (None: the current one) with its span's ``tracestate`` dropped, so that no
    span of ours inherits a caller's state and exports it."""
    from opentelemetry import context as contexts
    from opentelemetry import trace

    context = context if context is not None else contexts.get_current()
    parent = trace.get_current_span(context).get_span_context()
    if not parent.is_valid or not parent.trace_state:
        return context
    bare = trace.SpanContext(parent.trace_id, parent.span_id, parent.is_remote, parent.trace_flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(bare), context)


def current_context() -> Any:
    """The calling thread's context, for work handed to another thread (None while off)."""
    if not providers.enabled():
        return None
    from opentelemetry import context

    return context.get_current()


class DispatchTraces:
    """One ``dispatch`` span per event of a call to intake, and the contexts their jobs carry."""

    def __init__(self, spans: dict[int, Any]) -> None:
        self.spans = spans

    @quiet(None)
    def carrier(self, item: int) -> str | None:
        span = self.spans.get(item)
        return carrier(span) if span is not None else None

    @quiet(None)
    def end(self, deliveries: Mapping[int, int], error: str | None = None) -> None:
        """Ends every span: ``webhook.deliveries`` per event, or ``error.type`` when the call
        failed (the error's type, never its words)."""
        from opentelemetry.trace import StatusCode

        for item, span in self.spans.items():
            span.set_attributes(
                attributes({"webhook.deliveries": deliveries.get(item, 0), "error.type": error})
            )
            if error is not None:
                span.set_status(StatusCode.ERROR)
            span.end()


@quiet(None)
def dispatch_traces(events: Mapping[int, str], parents: Sequence[Any] = ()) -> DispatchTraces | None:
    """Starts a ``dispatch`` span for each event (``events``: item -> event name), a child of
    ``parents[item]`` when given (an API request's context), else of the current span."""
    tracer = providers.tracer()
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    spans = {}
    for item, event in events.items():
        parent = without_state(parents[item] if item < len(parents) else None)
        spans[item] = tracer.start_span(
            "dispatch",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=attributes({"webhook.event": event}),
        )
    return DispatchTraces(spans)
