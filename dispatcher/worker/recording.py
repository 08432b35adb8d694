"""Recording attempts: a group per transaction, retried while the database is away, else held in
the local spool until it answers. A record that cannot be written is never a reason to send again.
Each attempt recorded (or held) is then one line on the worker's terminal (:func:`attempt_line`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

from .. import store
from ..logs import log_line, say
from ..runtime import Runtime
from ..vocabulary import AttemptOutcome, FailureKind
from . import spool

T = TypeVar("T")
Entry = tuple[store.AttemptRecord, str | None]
"""An attempt record and, for a failed one, the reason its delivery failed."""

_DB_WRITE = Retrying(
    retry=retry_if_exception(store.is_transient),
    stop=stop_after_delay(20),
    wait=wait_exponential(multiplier=0.2, max=5),
    reraise=True,
)
"""A database write that failed for a reason that may pass is tried again for up to 20 s (built
once: only the job's thread uses it)."""


def db_write(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` retried while the database is away (:data:`_DB_WRITE`)."""
    return functools.partial(_DB_WRITE, fn)


def attempt_record(
    claim: store.Claim, url: str, outcome: str, now: datetime, **fields: Any
) -> store.AttemptRecord:
    """The attempt row of a claimed delivery's attempt."""
    return store.AttemptRecord(
        request_id=claim.request_id,
        event=claim.event,
        endpoint=claim.endpoint,
        url=url,
        attempt=claim.attempt,
        outcome=outcome,
        created_at=now,
        **fields,
    )


def record(runtime: Runtime, entries: list[Entry], worker: str) -> None:
    """Writes attempts (each with its reason) in one transaction, retrying while the database is
    away; if it still refuses, holds each in the spool. When the group fails for a reason that
    will not pass (bad data), each is written on its own, so one bad record holds back no other.
    Then says each attempt on the worker's terminal."""
    _write(runtime, entries, worker)
    for attempt, _reason in entries:
        say(attempt_line(attempt))


def _write(runtime: Runtime, entries: list[Entry], worker: str) -> None:
    try:
        db_write(store.record_attempts)(runtime.engine, entries, worker)
        return
    except SQLAlchemyError as exc:
        if store.is_transient(exc) or len(entries) == 1:
            _hold(runtime, entries, worker, exc)
            return
    for entry in entries:
        try:
            db_write(store.record_attempts)(runtime.engine, [entry], worker)
        except SQLAlchemyError as exc:
            _hold(runtime, [entry], worker, exc)


def attempt_line(attempt: store.AttemptRecord) -> str:
    """The worker terminal's line for one attempt: local time, event, endpoint, the request_id's
    first 8 characters, the outcome, milliseconds --
    ``17:02:11  order_changed  pharmacy  3f9a2c1e  delivered 200  41 ms``.

    Never the partner's words: an answer is shown by its status code alone (its reason phrase
    and body stay in the log, sealed); an error is shown only for an attempt that got no answer,
    when it is the sender's own one line (``connection refused by 127.0.0.1:9000``)."""
    moment = attempt.created_at.astimezone().strftime("%H:%M:%S")
    fields = (moment, attempt.event, attempt.endpoint, attempt.request_id[:8], _outcome(attempt))
    return "  ".join((*fields, f"{attempt.duration_ms or 0} ms"))


def _outcome(attempt: store.AttemptRecord) -> str:
    """``delivered 200``, ``retry in 75 s after 503``, ``retry in 30 s: <error>``, ``failed 400``,
    ``failed: <error>``, ``refused: <the guard's words>``."""
    status, error = attempt.http_status, attempt.error or "no error recorded"
    if attempt.outcome == AttemptOutcome.DELIVERED:
        return f"delivered {status}"
    if attempt.outcome == AttemptOutcome.RETRY_SCHEDULED:
        wait = _wait(attempt)
        return f"retry in {wait} after {status}" if status is not None else f"retry in {wait}: {error}"
    if attempt.failure == FailureKind.DESTINATION_REFUSED:
        return f"refused: {error}"
    if attempt.outcome != AttemptOutcome.FAILED:
        return str(attempt.outcome)
    if status is None:
        return f"failed: {error}"
    exhausted = error.endswith("attempts exhausted")
    return f"failed {status} (attempts exhausted)" if exhausted else f"failed {status}"


def _wait(attempt: store.AttemptRecord) -> str:
    """How long until the next attempt: ``75 s``, ``10 min``, ``3 h``."""
    if attempt.next_attempt_at is None:
        return "a moment"
    seconds = max(0, round((attempt.next_attempt_at - attempt.created_at).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    return f"{round(seconds / 60)} min" if seconds < 7200 else f"{round(seconds / 3600)} h"


def _hold(runtime: Runtime, entries: list[Entry], worker: str, exc: SQLAlchemyError) -> None:
    for attempt, reason in entries:
        held = spool.hold(runtime.spool_dir, attempt, worker, reason, runtime.keyring.seal)
        log_line(
            logging.ERROR,
            "database refused the attempt record; held in the spool until it answers",
            request_id=attempt.request_id,
            attempt=attempt.attempt,
            spool=held.name,
            error=store.describe_error(exc),
        )


def flush_spool(runtime: Runtime) -> int:
    """Writes held attempt records to the database; returns how many."""

    def set_aside(path: Path, exc: Exception) -> None:
        log_line(
            logging.ERROR,
            "spooled attempt record refused for good; set aside, its delivery is recovered by reconcile",
            spool=path.name,
            error=store.describe_error(exc),
        )

    try:
        written = spool.flush(
            runtime.spool_dir,
            lambda rec, worker, reason: store.record_attempt(runtime.engine, rec, worker, reason),
            # the database away, or the disk: try again; a record it refuses, or a corrupt file: set aside
            retry_later=lambda exc: (
                store.is_transient(exc) if isinstance(exc, SQLAlchemyError) else isinstance(exc, OSError)
            ),
            set_aside=set_aside,
        )
    except SQLAlchemyError:
        return 0
    if written:
        log_line(logging.WARNING, "spooled attempt records written to the database", count=written)
    return written
