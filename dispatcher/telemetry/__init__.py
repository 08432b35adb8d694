"""The telemetry room: OpenTelemetry traces and OTLP metrics, off at no cost until configured.

Owns: the process's providers made from ``telemetry:`` (:mod:`.providers`: one tracer and one
meter per process, OTLP/HTTP exporters, the sampler; no provider, exporter or thread while telemetry
is off), the spans of an event's trace and the only attributes they may carry
(:mod:`.spans`: ``dispatch`` in the caller, ``deliver`` per attempt in a worker, the POST as an
HTTP client span, the API's server spans; a trace's context as the text a job carries, W3C
``traceparent`` for a partner that asked), an endpoint's URL as telemetry may show it
(:mod:`.urls`: no credentials, no query, no fragment), and the metrics mirrored to OTLP
(:mod:`.instruments`).

May import: ``config`` and the shared kernel; never the database, Redis or RQ (the contexts
travel through ``queue``, read by ``worker``).

Invariants: no payload value, partner answer, reason phrase, error message, key, secret or
token in a span, event, attribute or resource -- every attribute set goes through one list of
names (:data:`.spans.ATTRIBUTES`); telemetry never fails a dispatch or a delivery.
"""

from .deliver import DeliverSpan, HttpSpan, start_deliver
from .providers import configure, enabled, flush, shutdown, shutdown_bounded, warnings
from .providers import forget_in_child as _forget_providers
from .server import ServerSpan, server_span
from .spans import DispatchTraces, current_context, dispatch_traces


def forget_in_child() -> None:
    """In a worker's forked child (RQ's scheduler): nothing of the parent's telemetry exported."""
    from . import instruments

    _forget_providers()
    instruments.forget_in_child()


__all__ = [
    "DeliverSpan",
    "DispatchTraces",
    "HttpSpan",
    "ServerSpan",
    "configure",
    "current_context",
    "dispatch_traces",
    "enabled",
    "flush",
    "forget_in_child",
    "server_span",
    "shutdown",
    "shutdown_bounded",
    "start_deliver",
    "warnings",
]
