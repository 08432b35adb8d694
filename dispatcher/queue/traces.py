"""A delivery's trace contexts, kept in its job's record: the event's ``dispatch`` span's,
written with the job, and its last attempt's ``deliver`` span's, written as the attempt ends.
Opaque text here; ``telemetry`` writes and reads it, only while it traces."""

from __future__ import annotations

from collections.abc import Mapping

import redis
from rq import Queue

from .. import lua
from . import rq_edge

TRACE_FIELD = "dispatcher_trace"
"""A field of our own in the job's record (RQ leaves fields it does not know alone): the
context of the event's ``dispatch`` span, as ``telemetry`` writes it, written with the job when
the dispatching process traces. A job made again from the database (reconcile) has none."""
LAST_ATTEMPT_FIELD = "dispatcher_trace_last"
"""Beside it: the context of the delivery's last attempt's ``deliver`` span, which the next
attempt's span links to."""


def _text(raw: bytes | str | None) -> str | None:
    if not raw:
        return None
    return raw.decode() if isinstance(raw, bytes) else raw


def traces(queue: Queue, request_ids: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """Each job's trace contexts -- its event's ``dispatch`` span's, its last attempt's -- in one
    round trip (asked only by a worker that traces)."""
    with queue.connection.pipeline(transaction=False) as pipe:
        for request_id in request_ids:
            pipe.hmget(rq_edge.job_key(request_id), TRACE_FIELD, LAST_ATTEMPT_FIELD)
        replies = pipe.execute()
    return {
        rid: (_text(dispatch), _text(last))
        for rid, (dispatch, last) in zip(request_ids, replies, strict=True)
    }


def keep_attempt_traces(queue: Queue, contexts: Mapping[str, str]) -> None:
    """Keeps each delivery's last attempt's context in its job record (one pipeline), for the
    next attempt's span to link to; a job whose record is gone is left so (``keep_trace.lua``)."""
    if not contexts:
        return
    with queue.connection.pipeline(transaction=False) as pipe:
        for request_id, context in contexts.items():
            _KEEP_TRACE_SCRIPT(
                keys=[rq_edge.job_key(request_id)], args=[LAST_ATTEMPT_FIELD, context], client=pipe
            )
        pipe.execute()


_KEEP_TRACE_SCRIPT = redis.Redis().register_script(lua.load(__package__, "keep_trace.lua"))
"""Run with EVALSHA; no connection is made here."""
