"""A worker's part of an event's trace: the contexts a flight's jobs carry, read in one round
trip, and each attempt's ``deliver`` span ended with its outcome -- a retry's job keeping the
span's context for the next attempt's span to link to. Nothing here while the worker does not
trace; Redis not answering costs a span its parent or its link, never a delivery."""

from __future__ import annotations

import redis

from .. import queue, telemetry
from ..runtime import Runtime
from ..store import Claim
from ..vocabulary import AttemptOutcome
from .posting import Sending


def contexts(
    runtime: Runtime, request_ids: list[str], known: dict[str, tuple[str | None, str | None]] | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """The deliveries' trace contexts from their jobs: the ``dispatch`` span's and the previous
    attempt's -- those ``known`` (read with the take), the rest read now in one round trip
    (Redis not answering: their spans start traces of their own)."""
    if not telemetry.enabled() or not request_ids:
        return {}
    known = known or {}
    found = {rid: known[rid] for rid in request_ids if rid in known}
    rest = [rid for rid in request_ids if rid not in known]
    if not rest:
        return found
    try:
        return found | queue.traces(runtime.queue, rest)
    except redis.RedisError:
        return found


def end_attempts(runtime: Runtime, ended: list[tuple[Sending, str]]) -> None:
    """Ends each attempt's ``deliver`` span with its outcome as the log names it; a retry's job
    keeps the span's context."""
    links = {}
    for sending, outcome in ended:
        if sending.span is None:
            continue
        sending.span.end(outcome)
        if outcome == AttemptOutcome.RETRY_SCHEDULED:
            links[sending.claim.request_id] = sending.span.carrier()
    try:
        queue.keep_attempt_traces(runtime.queue, {rid: context for rid, context in links.items() if context})
    except redis.RedisError:  # the next attempt's span is not linked: nothing else is lost
        pass


def failed_unsent(claim: Claim, context: tuple[str | None, str | None] | None) -> None:
    """A delivery failed before any POST (its payload erased or unreadable, its endpoint gone):
    a ``deliver`` span with no ``POST`` in it, ``webhook.outcome`` failed, ``error.type``
    ``not_sent`` -- the trace shows the attempt the log records."""
    if not telemetry.enabled():
        return
    dispatch, previous = context or (None, None)
    span = telemetry.start_deliver(
        dispatch, previous, request_id=claim.request_id, endpoint=claim.endpoint, attempt=claim.attempt
    )
    if span is not None:
        span.end(AttemptOutcome.FAILED, error_type="not_sent")
