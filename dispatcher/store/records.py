"""The attempt record: one row per attempt, and the delivery moved on, in one transaction, by
the holder of the claim only. A crashed worker's cut-short attempt is recorded ``interrupted``
and gives the attempt back to the budget."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..policy.retry import STATUS_AFTER
from ..vocabulary import AttemptOutcome, DeliveryStatus
from . import counts
from .engine import storable_text
from .schema import ATTEMPTS, DELIVERIES, UTCDateTime

STORED_ERROR_CHARS = 1000
"""An attempt's error is stored up to this many characters (it may quote a partner at length)."""


def _stored_error(error: str | None) -> str | None:
    if error is None or len(error) <= STORED_ERROR_CHARS:
        return storable_text(error)
    return storable_text(error[: STORED_ERROR_CHARS - 3] + "...")


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt row; what an attempt that sent nothing lacks defaults to None. ``error`` is
    the partner's words as much as ours (sealed, PHI); ``failure`` is the failure kind of an
    attempt that got no answer (anyone may read it)."""

    request_id: str
    event: str
    endpoint: str
    url: str
    attempt: int
    outcome: str
    created_at: datetime
    http_status: int | None = None
    error: str | None = None
    response_body: str | None = None
    duration_ms: int | None = None
    next_attempt_at: datetime | None = None
    request_payload: str | None = None
    request_headers: dict[str, str] | None = None
    failure: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "event": self.event,
            "endpoint": self.endpoint,
            "url": self.url,
            "attempt": self.attempt,
            "retry": self.attempt > 1,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error": _stored_error(self.error),
            "response_body": storable_text(self.response_body),
            "duration_ms": self.duration_ms,
            "next_attempt_at": self.next_attempt_at,
            "request_payload": self.request_payload,
            "request_headers": json.dumps(self.request_headers) if self.request_headers is not None else None,
            "created_at": self.created_at,
            "failure": self.failure,
        }


def record_attempt(engine: Engine, record: AttemptRecord, worker: str, reason: str | None = None) -> bool:
    """Writes the attempt row and moves the delivery on, in one transaction.

    Only the holder of the claim (``worker``) moves the delivery. An ``interrupted`` record (a
    dead worker's attempt, written by reconcile) gives the attempt back to the budget, so a
    crash never costs a delivery one of its tries. Returns False, writing nothing, when the
    claim is no longer held.
    """
    return record_attempts(engine, [(record, reason)], worker)[0]


def _record_statement(interrupted: bool) -> Any:
    """The conditional UPDATE of a delivery after an attempt, built once (its SQL is cached)."""
    values: dict[str, Any] = {
        "status": sa.bindparam("r_status"),
        "worker": None,
        "next_attempt_at": sa.bindparam("r_next_attempt_at", type_=UTCDateTime()),
        "reason": sa.bindparam("r_reason"),
        "updated_at": sa.bindparam("r_updated_at", type_=UTCDateTime()),
    }
    if interrupted:  # a dead worker's attempt goes back to the budget
        values["attempt_limit"] = DELIVERIES.c.attempt_limit + 1
    else:
        values["last_http_status"] = sa.bindparam("r_http_status", type_=sa.Integer())
    return (
        DELIVERIES.update()
        .where(
            DELIVERIES.c.request_id == sa.bindparam("r_request_id"),
            DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
            DELIVERIES.c.worker == sa.bindparam("r_worker"),
        )
        .values(**values)
    )


_RECORD = _record_statement(interrupted=False)
_RECORD_INTERRUPTED = _record_statement(interrupted=True)


class _ClaimLost(Exception):
    """Rolls back a batch record in which some claim was no longer held."""


def record_attempts(
    engine: Engine, records: Sequence[tuple[AttemptRecord, str | None]], worker: str
) -> list[bool]:
    """:func:`record_attempt` for several attempts (with each one's ``reason``) in one
    transaction: one commit for a batch. Returns, for each, whether it was written.

    The usual case, every claim still held, is one UPDATE run for all of them (one round trip)
    and one INSERT. When some claim is gone, that transaction is rolled back and each is
    written on its own, so the others still are."""
    if len(records) > 1 and all(r.outcome != AttemptOutcome.INTERRUPTED for r, _ in records):
        try:
            with engine.begin() as conn:
                params = [_record_params(r, reason, worker) for r, reason in records]
                if conn.execute(_RECORD, params).rowcount != len(params):
                    raise _ClaimLost
                conn.execute(ATTEMPTS.insert(), [r.as_row() for r, _ in records])
                counts.add(conn, Counter(p["r_status"] for p in params))
            return [True] * len(records)
        except _ClaimLost:
            pass
    written: list[bool] = []
    inserts: list[dict[str, Any]] = []
    moved: Counter[str] = Counter()
    with engine.begin() as conn:
        for record, reason in records:
            one = _record_params(record, reason, worker)
            updated = conn.execute(
                _RECORD_INTERRUPTED if record.outcome == AttemptOutcome.INTERRUPTED else _RECORD, one
            )
            written.append(updated.rowcount == 1)
            if updated.rowcount == 1:
                inserts.append(record.as_row())
                moved[one["r_status"]] += 1
        if inserts:
            conn.execute(ATTEMPTS.insert(), inserts)
        counts.add(conn, moved)
    return written


def _record_params(record: AttemptRecord, reason: str | None, worker: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "r_request_id": record.request_id,
        "r_worker": worker,
        "r_status": STATUS_AFTER[record.outcome],
        "r_next_attempt_at": record.next_attempt_at,
        "r_reason": reason,
        "r_updated_at": record.created_at,
    }
    if record.outcome != AttemptOutcome.INTERRUPTED:
        params["r_http_status"] = record.http_status
    return params
