"""Reading the log a screen at a time, for the operator console: a page of deliveries newest
first from a keyset cursor, with why each one is not delivered; the selected deliveries per
status; and an endpoint's attempts per hour.

A page is one short read bounded by the cursor (``created_at``, ``request_id`` of the last row
shown), never OFFSET, so the thousandth page costs what the first does. The hourly counts read
the attempts of the window only, through the index on their ``created_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..vocabulary import STATUSES, AttemptOutcome
from .counts import by_status
from .engine import reading
from .schema import ATTEMPTS, DELIVERIES
from .selection import DELIVERY_FIELDS, Selection, _after, count_by_status

Cursor = tuple[datetime, str]
"""Where a page ends: the ``created_at`` and ``request_id`` of its last (oldest) row."""
LISTED_FIELDS = (*DELIVERY_FIELDS, "reason", "last_failure")
"""A row of a page: a delivery's columns, why it failed (``reason``, None unless failed) and the
:class:`~dispatcher.vocabulary.FailureKind` of its latest attempt (None when that attempt got an
answer, or there is none)."""


def _last_failure() -> Any:
    """The failure kind of the delivery's latest attempt (an interrupted one left out): one seek
    in the attempts' index on ``request_id`` per row of the page."""
    return (
        sa.select(ATTEMPTS.c.failure)
        .where(
            ATTEMPTS.c.request_id == DELIVERIES.c.request_id,
            ATTEMPTS.c.outcome != AttemptOutcome.INTERRUPTED.value,
        )
        .order_by(ATTEMPTS.c.attempt.desc(), ATTEMPTS.c.id.desc())
        .limit(1)
        .correlate(DELIVERIES)
        .scalar_subquery()
        .label("last_failure")
    )


def newest_first(
    engine: Engine, selection: Selection, after: Cursor | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], Cursor | None]:
    """Up to ``limit`` selected deliveries older than ``after`` (from the newest without it),
    newest first, each with :data:`LISTED_FIELDS`, and the cursor of the next page (None on the
    last)."""
    keys = [DELIVERIES.c.created_at, DELIVERIES.c.request_id]
    columns = [DELIVERIES.c[name] for name in (*DELIVERY_FIELDS, "reason")]
    query = sa.select(*columns, _last_failure()).where(*selection.conditions())
    if after is not None:
        query = query.where(_after(keys, after, descending=True))
    query = query.order_by(*(key.desc() for key in keys)).limit(limit + 1)
    with reading(engine) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, (rows[-1]["created_at"], rows[-1]["request_id"])


def status_counts(engine: Engine, selection: Selection) -> dict[str, int]:
    """The selected deliveries per status, each known status present (0 when none). Selecting
    everything, it reads the kept counts (:func:`.counts.by_status`), not the log; a filter
    counts the rows it selects, through the index that filter uses."""
    if not selection.conditions():
        with reading(engine) as conn:
            return by_status(conn)
    counted = count_by_status(engine, selection)
    return {status: counted.get(status, 0) for status in STATUSES}


@dataclass(frozen=True)
class HourlyAttempts:
    """One endpoint's attempts in one hour of a window (hour 0 is the window's first)."""

    endpoint: str
    hour: int
    attempts: int
    delivered: int


def _hour_of(engine: Engine, start: datetime) -> Any:
    """The hour since ``start`` an attempt was made in, as an integer, in this database's SQL."""
    if engine.dialect.name == "postgresql":
        seconds = sa.extract("epoch", ATTEMPTS.c.created_at - sa.literal(start, ATTEMPTS.c.created_at.type))
        return sa.cast(sa.func.floor(seconds / 3600), sa.Integer)
    # SQLite stores UTC as text; julianday() reads it (and the bound start) as fractional days,
    # exact to about 50 µs: the seconds between them are rounded to the millisecond before the
    # hour is taken, so an attempt made exactly on an hour's edge is not put in the hour before.
    start_text = start.replace(tzinfo=None).isoformat(sep=" ")
    days = sa.func.julianday(ATTEMPTS.c.created_at) - sa.func.julianday(start_text)
    return sa.cast(sa.func.round(days * 86400.0, 3) / 3600.0, sa.Integer)


def hourly_attempts(engine: Engine, start: datetime, end: datetime) -> list[HourlyAttempts]:
    """Attempts and delivered attempts per endpoint per hour from ``start`` to ``end``."""
    hour = _hour_of(engine, start).label("hour")
    delivered = sa.func.sum(sa.case((ATTEMPTS.c.outcome == AttemptOutcome.DELIVERED.value, 1), else_=0))
    query = (
        sa.select(ATTEMPTS.c.endpoint, hour, sa.func.count().label("attempts"), delivered.label("delivered"))
        .where(ATTEMPTS.c.created_at >= start, ATTEMPTS.c.created_at < end)
        .group_by(ATTEMPTS.c.endpoint, hour)
    )
    with reading(engine) as conn:
        return [
            HourlyAttempts(row.endpoint, int(row.hour), int(row.attempts), int(row.delivered or 0))
            for row in conn.execute(query)
        ]
