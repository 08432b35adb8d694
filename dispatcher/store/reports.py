"""Reports over the transaction log, computed by the database: delivery statistics, and the
rows of a streaming export.

Both work on tables of any size without loading them: statistics are computed by the database
(GROUP BY for the counts, window functions for the percentiles) and return a few rows per
group; the export reads in keyset pages of :data:`PAGE_SIZE` rows, each page in its own short
transaction, so memory stays flat and a long export never holds SQLite's write lock.

Statistics
----------
A delivery is counted when it was *created* in ``[since, until)``. For each group (an event, an
endpoint, and all of them):

* ``deliveries``; ``delivered`` and ``failed`` (the final statuses); ``pending`` = not final yet
  (``queued`` + ``in_flight`` + ``retrying``), and ``retrying`` (the part of ``pending`` waiting
  for a scheduled retry);
* ``success_rate`` = delivered / (delivered + failed), rounded to 4 places; null when none is final;
* ``attempts_per_delivery`` = the mean of the deliveries' attempt counters (every attempt
  started, an interrupted one included), rounded to 2 places; null when there are no deliveries;
* ``p50_ms`` / ``p95_ms``: percentiles of ``duration_ms`` over the attempt rows of those
  deliveries, leaving out ``interrupted`` rows and rows without a duration. Method: **nearest
  rank** -- the value at 1-based position ``ceil(p/100 * n)`` in ascending order -- always an
  observed value, computed in integer arithmetic by the same SQL on SQLite and PostgreSQL, so
  both backends give identical answers. Null when there is no timed attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..vocabulary import PENDING_STATUSES, AttemptOutcome, DeliveryStatus, ExportRows
from .engine import reading
from .schema import ATTEMPTS, DELIVERIES
from .selection import ATTEMPT_RESULT, PAGE_SIZE, Selection, count, rows

PERCENTILES = (50, 95)

ATTEMPT_COLUMNS = (
    "id",
    "request_id",
    "event",
    "endpoint",
    "url",
    *ATTEMPT_RESULT,
    "next_attempt_at",
    "created_at",
    "response_body",
    "request_headers",
    "request_payload",
)
DELIVERY_COLUMNS = (
    "request_id",
    "event",
    "endpoint",
    "url",
    "status",
    "attempts",
    "attempt_limit",
    "last_http_status",
    "reason",
    "worker",
    "replay_of",
    "attempt_started_at",
    "next_attempt_at",
    "created_at",
    "updated_at",
    "payload",
    "payload_erased_at",
)
TIME_COLUMNS = frozenset(
    {"next_attempt_at", "attempt_started_at", "created_at", "updated_at", "payload_erased_at"}
)
ROW_KINDS: dict[str, tuple[str, ...]] = {
    ExportRows.ATTEMPTS: ATTEMPT_COLUMNS,
    ExportRows.DELIVERIES: DELIVERY_COLUMNS,
}


# --- statistics ------------------------------------------------------------------------------


@dataclass
class GroupStats:
    deliveries: int = 0
    delivered: int = 0
    failed: int = 0
    pending: int = 0
    retrying: int = 0
    success_rate: float | None = None
    attempts_per_delivery: float | None = None
    p50_ms: int | None = None
    p95_ms: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Stats:
    since: datetime | None
    until: datetime | None
    by_event: list[tuple[str, GroupStats]]
    by_endpoint: list[tuple[str, GroupStats]]
    total: GroupStats

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "until": self.until,
            "by_event": [{"event": name, **group.as_dict()} for name, group in self.by_event],
            "by_endpoint": [{"endpoint": name, **group.as_dict()} for name, group in self.by_endpoint],
            "total": self.total.as_dict(),
        }


def nearest_rank(p: int, n: int) -> int:
    """The 1-based position of the ``p``-th percentile among ``n`` sorted values: ceil(p*n/100)."""
    return (p * n + 99) // 100


def _count_query(key: str | None, window: list[Any]) -> sa.Select[Any]:
    d = DELIVERIES.c

    def count_where(condition: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    columns = [
        sa.func.count().label("deliveries"),
        count_where(d.status == DeliveryStatus.DELIVERED).label("delivered"),
        count_where(d.status == DeliveryStatus.FAILED).label("failed"),
        count_where(d.status.in_(PENDING_STATUSES)).label("pending"),
        count_where(d.status == DeliveryStatus.RETRYING).label("retrying"),
        sa.func.coalesce(sa.func.sum(d.attempts), 0).label("attempts"),
    ]
    if key is None:
        return sa.select(sa.literal("").label("k"), *columns).where(*window)
    return sa.select(d[key].label("k"), *columns).where(*window).group_by(d[key])


def _percentile_query(key: str | None, window: list[Any]) -> sa.Select[Any]:
    """Nearest-rank percentiles of attempt durations, per ``key`` (or overall), in one query.

    Numbers each group's timed attempts in ascending order (``row_number``) beside the group's
    size (``count(*) OVER``) and keeps only the rows at the wanted ranks, so the database sorts
    (spilling to disk as it needs) and only two values per group come back.
    """
    deliveries = (
        sa.select(DELIVERIES.c.request_id, DELIVERIES.c.event, DELIVERIES.c.endpoint)
        .where(*window)
        .subquery("d")
    )
    a = ATTEMPTS.c
    group = deliveries.c[key] if key is not None else sa.literal("")
    timed = (
        sa.select(group.label("k"), a.duration_ms.label("ms"))
        .select_from(ATTEMPTS.join(deliveries, a.request_id == deliveries.c.request_id))
        .where(a.outcome != AttemptOutcome.INTERRUPTED, a.duration_ms.is_not(None))
        .subquery("timed")
    )
    partition = timed.c.k if key is not None else None
    ranked = sa.select(
        timed.c.k,
        timed.c.ms,
        sa.func.row_number().over(partition_by=partition, order_by=timed.c.ms).label("rn"),
        sa.func.count().over(partition_by=partition).label("n"),
    ).subquery("ranked")
    ranks = {p: (p * ranked.c.n + 99) // 100 for p in PERCENTILES}
    return (
        sa.select(
            ranked.c.k,
            *(
                sa.func.max(sa.case((ranked.c.rn == rank, ranked.c.ms))).label(f"p{p}")
                for p, rank in ranks.items()
            ),
        )
        .where(sa.or_(*(ranked.c.rn == rank for rank in ranks.values())))
        .group_by(ranked.c.k)
    )


def _groups(conn: sa.Connection, key: str | None, window: list[Any]) -> dict[str, GroupStats]:
    groups: dict[str, GroupStats] = {}
    for row in conn.execute(_count_query(key, window)).mappings():
        deliveries = int(row["deliveries"])
        if key is not None and deliveries == 0:
            continue
        delivered, failed = int(row["delivered"]), int(row["failed"])
        groups[row["k"]] = GroupStats(
            deliveries=deliveries,
            delivered=delivered,
            failed=failed,
            pending=int(row["pending"]),
            retrying=int(row["retrying"]),
            success_rate=round(delivered / (delivered + failed), 4) if delivered + failed else None,
            attempts_per_delivery=round(int(row["attempts"]) / deliveries, 2) if deliveries else None,
        )
    for row in conn.execute(_percentile_query(key, window)).mappings():
        group = groups.get(row["k"])
        if group is not None:
            group.p50_ms = None if row["p50"] is None else int(row["p50"])
            group.p95_ms = None if row["p95"] is None else int(row["p95"])
    return groups


def delivery_stats(engine: Engine, since: datetime | None = None, until: datetime | None = None) -> Stats:
    """Per event, per endpoint and overall statistics of the deliveries created in ``[since, until)``."""
    window = Selection(since=since, until=until).conditions()
    with reading(engine) as conn:
        by_event = _groups(conn, "event", window)
        by_endpoint = _groups(conn, "endpoint", window)
        total = _groups(conn, None, window).get("", GroupStats())
    return Stats(
        since=since,
        until=until,
        by_event=sorted(by_event.items()),
        by_endpoint=sorted(by_endpoint.items()),
        total=total,
    )


# --- export ----------------------------------------------------------------------------------

ROW_ORDER: dict[str, tuple[str, ...]] = {
    ExportRows.ATTEMPTS: ("id",),
    ExportRows.DELIVERIES: ("created_at", "request_id"),
}
"""How each kind of export is ordered: attempts by id, deliveries by creation."""


def _table(kind: str) -> sa.Table:
    if kind not in ROW_KINDS:
        raise ValueError(f"rows must be one of {', '.join(ROW_KINDS)}")
    return ATTEMPTS if kind == ExportRows.ATTEMPTS else DELIVERIES


def count_rows(engine: Engine, kind: str, selection: Selection) -> int:
    """How many rows :func:`export_rows` would yield for the same selection."""
    return count(engine, selection, _table(kind))


def export_rows(
    engine: Engine, kind: str, selection: Selection, page_size: int = PAGE_SIZE
) -> Iterator[sa.Row[Any]]:
    """Attempt rows (oldest first, by id) or delivery rows (by created_at, request_id), with the
    columns of :data:`ROW_KINDS` in that order, selected on the row's own ``created_at``,
    ``event`` and ``endpoint``; read in keyset pages, each in its own short transaction."""
    return rows(
        engine, selection, ROW_KINDS[kind], table=_table(kind), order_by=ROW_ORDER[kind], batch=page_size
    )
