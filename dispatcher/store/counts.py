"""Counts of final deliveries, kept as they change, so nothing that reads them scans the log.

``dispatcher info`` (and anything a dashboard polls) reports deliveries by status. Unfinished
ones (queued, in flight, retrying) are counted through the status index, which visits only
them: their number is the backlog, not the log. Final ones (delivered, failed) are the log
itself, millions of rows after a while, so each transaction that moves deliveries into or out
of a final status adds its change to ``webhook_status_counts`` in the same transaction: the
counts are exactly the rows, whatever crashes. Each process writes its own shard of rows
(``pid % SHARDS``), so workers recording at once never wait on one counter row; a read sums
the shards.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ..vocabulary import FINAL_STATUSES, PENDING_STATUSES, STATUSES
from .schema import DELIVERIES, STATUS_COUNTS

SHARDS = 16
HISTORY_SHARD = -1
"""The counts of rows that existed before the counts table did (filled once by migration 0002)."""


def shard() -> int:
    return os.getpid() % SHARDS


def add(conn: Connection, changes: Mapping[str, int]) -> None:
    """Adds ``changes`` (final status -> rows more, or fewer) to this process's shard, inside
    the caller's transaction."""
    rows = [
        {"status": status, "shard": shard(), "count": n}
        for status, n in changes.items()
        if n and status in FINAL_STATUSES
    ]
    if rows:
        conn.execute(_upsert(conn.dialect.name), rows)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(STATUS_COUNTS)
    return statement.on_conflict_do_update(
        index_elements=[STATUS_COUNTS.c.status, STATUS_COUNTS.c.shard],
        set_={"count": STATUS_COUNTS.c.count + statement.excluded["count"]},
    )


def statuses_of(rows: Any) -> Counter[str]:
    """How many of ``rows`` (each with a ``status``) are in each status."""
    return Counter(str(row.status) for row in rows)


def by_status(conn: Connection) -> dict[str, int]:
    """Every delivery per status, each status present: unfinished ones through the status
    index, final ones from the counts."""
    counts = dict.fromkeys(STATUSES, 0)
    unfinished = (
        sa.select(DELIVERIES.c.status, sa.func.count())
        .where(DELIVERIES.c.status.in_(PENDING_STATUSES))
        .group_by(DELIVERIES.c.status)
    )
    final = sa.select(STATUS_COUNTS.c.status, sa.func.sum(STATUS_COUNTS.c.count)).group_by(
        STATUS_COUNTS.c.status
    )
    for status, n in [*conn.execute(unfinished).all(), *conn.execute(final).all()]:
        counts[status] = int(n or 0)
    return counts
