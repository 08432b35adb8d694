"""Reports over the transaction log: delivery statistics and a streaming export.

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

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import store

PAGE_SIZE = 1000
PERCENTILES = (50, 95)
PENDING_STATUSES = (store.QUEUED, store.IN_FLIGHT, store.RETRYING)

ATTEMPT_COLUMNS = (
    "id",
    "request_id",
    "event",
    "endpoint",
    "url",
    "attempt",
    "retry",
    "outcome",
    "http_status",
    "error",
    "duration_ms",
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
)
TIME_COLUMNS = frozenset({"next_attempt_at", "attempt_started_at", "created_at", "updated_at"})
ROW_KINDS = {"attempts": ATTEMPT_COLUMNS, "deliveries": DELIVERY_COLUMNS}


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


def _window(since: datetime | None, until: datetime | None) -> list[Any]:
    created = store.DELIVERIES.c.created_at
    conditions: list[Any] = []
    if since is not None:
        conditions.append(created >= since)
    if until is not None:
        conditions.append(created < until)
    return conditions


def _count_query(key: str | None, window: list[Any]) -> sa.Select:
    d = store.DELIVERIES.c

    def count_where(condition: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    columns = [
        sa.func.count().label("deliveries"),
        count_where(d.status == store.DELIVERED).label("delivered"),
        count_where(d.status == store.FAILED).label("failed"),
        count_where(d.status.in_(PENDING_STATUSES)).label("pending"),
        count_where(d.status == store.RETRYING).label("retrying"),
        sa.func.coalesce(sa.func.sum(d.attempts), 0).label("attempts"),
    ]
    if key is None:
        return sa.select(sa.literal("").label("k"), *columns).where(*window)
    return sa.select(d[key].label("k"), *columns).where(*window).group_by(d[key])


def _percentile_query(key: str | None, window: list[Any]) -> sa.Select:
    """Nearest-rank percentiles of attempt durations, per ``key`` (or overall), in one query.

    Numbers each group's timed attempts in ascending order (``row_number``) beside the group's
    size (``count(*) OVER``) and keeps only the rows at the wanted ranks, so the database sorts
    (spilling to disk as it needs) and only two values per group come back.
    """
    deliveries = (
        sa.select(store.DELIVERIES.c.request_id, store.DELIVERIES.c.event, store.DELIVERIES.c.endpoint)
        .where(*window)
        .subquery("d")
    )
    a = store.ATTEMPTS.c
    group = deliveries.c[key] if key is not None else sa.literal("")
    timed = (
        sa.select(group.label("k"), a.duration_ms.label("ms"))
        .select_from(store.ATTEMPTS.join(deliveries, a.request_id == deliveries.c.request_id))
        .where(a.outcome != store.INTERRUPTED, a.duration_ms.is_not(None))
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
    window = _window(since, until)
    with store.reading(engine) as conn:
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


def _export_filters(
    table: sa.Table,
    since: datetime | None,
    until: datetime | None,
    event: str | None,
    endpoint: str | None,
) -> list[Any]:
    conditions: list[Any] = []
    if since is not None:
        conditions.append(table.c.created_at >= since)
    if until is not None:
        conditions.append(table.c.created_at < until)
    if event:
        conditions.append(table.c.event == event)
    if endpoint:
        conditions.append(table.c.endpoint == endpoint)
    return conditions


def count_rows(
    engine: Engine,
    rows: str = "attempts",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event: str | None = None,
    endpoint: str | None = None,
) -> int:
    """How many rows :func:`iter_rows` would yield with the same filters."""
    table = store.ATTEMPTS if rows == "attempts" else store.DELIVERIES
    query = (
        sa.select(sa.func.count())
        .select_from(table)
        .where(*_export_filters(table, since, until, event, endpoint))
    )
    with store.reading(engine) as conn:
        return int(conn.execute(query).scalar_one())


def iter_rows(
    engine: Engine,
    rows: str = "attempts",
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    event: str | None = None,
    endpoint: str | None = None,
    page_size: int = PAGE_SIZE,
) -> Iterator[sa.Row]:
    """Attempt rows (oldest first, by id) or delivery rows (by created_at, request_id), with the
    columns of :data:`ROW_KINDS` in that order, filtered on the row's own ``created_at`` (``since``
    inclusive, ``until`` exclusive), ``event`` and ``endpoint``; read in keyset pages, each in its
    own short transaction (a long export never holds a lock or a snapshot)."""
    if rows not in ROW_KINDS:
        raise ValueError(f"rows must be one of {', '.join(ROW_KINDS)}")
    table = store.ATTEMPTS if rows == "attempts" else store.DELIVERIES
    columns = [table.c[name] for name in ROW_KINDS[rows]]
    filters = _export_filters(table, since, until, event, endpoint)
    last: sa.Row | None = None
    while True:
        query = sa.select(*columns).where(*filters)
        if rows == "attempts":
            if last is not None:
                query = query.where(table.c.id > last.id)
            query = query.order_by(table.c.id)
        else:
            if last is not None:
                query = query.where(
                    sa.or_(
                        table.c.created_at > last.created_at,
                        sa.and_(table.c.created_at == last.created_at, table.c.request_id > last.request_id),
                    )
                )
            query = query.order_by(table.c.created_at, table.c.request_id)
        with store.reading(engine) as conn:
            page = conn.execute(query.limit(page_size)).all()
        yield from page
        if len(page) < page_size:
            return
        last = page[-1]


def utc_text(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (as :func:`events.format_utc`), quicker for millions of values."""
    if moment.tzinfo is not None and moment.utcoffset():
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds")[:19] + "Z"


class RowWriter:
    """Writes rows as JSON Lines (one object per line) or CSV (a header row, then one line per row).

    A row is a sequence of values in the order of ``columns``. Times are UTC
    ``YYYY-MM-DDTHH:MM:SSZ``; JSON text columns (``request_headers``, ``request_payload``,
    ``payload``) are written as stored, as strings, in both formats. In CSV a null is an empty
    field and a boolean is ``true``/``false``.
    """

    def __init__(self, stream: IO[str], fmt: str, columns: Sequence[str]) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError("format must be jsonl or csv")
        self.stream = stream
        self.fmt = fmt
        self.columns = tuple(columns)
        self.count = 0
        self._times = [i for i, name in enumerate(self.columns) if name in TIME_COLUMNS]
        self._encode = json.JSONEncoder(ensure_ascii=False).encode
        self._csv = csv.writer(stream) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(self.columns)

    def write(self, row: Sequence[Any]) -> None:
        values = list(row)
        for i in self._times:
            if values[i] is not None:
                values[i] = utc_text(values[i])
        if self._csv is not None:
            self._csv.writerow(_csv_value(value) for value in values)
        else:
            self.stream.write(self._encode(dict(zip(self.columns, values, strict=True))) + "\n")
        self.count += 1


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
