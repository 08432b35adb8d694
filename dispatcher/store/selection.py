"""Reading the log: one :class:`Selection` of deliveries (or attempts) and one keyset pager.

``log list``, ``log export``, ``retry --failed``, ``replay``, ``prune`` and reconcile all say
which rows they want as a :class:`Selection` and read them with :func:`pages`, so a filter means
the same everywhere and every bulk read is paged the same way: by keyset, never OFFSET, each
page one short read on its own connection (a long read never holds a lock or a snapshot, and
rows that leave the selection meanwhile shift nothing).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from .engine import reading
from .schema import ATTEMPTS, DELIVERIES
from .search import matching

PAGE_SIZE = 1000
"""Rows per page of a bulk read."""

DELIVERY_STATE = ("request_id", "event", "endpoint", "status", "attempts", "last_http_status")
"""A delivery, named and where it stands: the first columns wherever deliveries are listed."""
DELIVERY_FIELDS = (*DELIVERY_STATE, "created_at", "updated_at")
"""The columns of a delivery in a listing (``log list``)."""
ATTEMPT_RESULT = ("attempt", "retry", "outcome", "http_status", "error", "duration_ms")
"""One attempt and what came of it: the first columns wherever attempts are listed."""
ATTEMPT_FIELDS = (*ATTEMPT_RESULT, "response_body", "next_attempt_at", "created_at")
"""The columns of an attempt in ``log show``."""


@dataclass(frozen=True)
class Selection:
    """Which rows a read or an operation takes; an unset field does not filter.

    ``since`` (inclusive) and ``until`` (exclusive) bound the row's own ``created_at``;
    ``updated_before`` bounds a delivery's ``updated_at`` (prune's cutoff, reconcile's grace).
    ``statuses``, ``updated_before``, ``with_payload`` (only deliveries whose payload is not
    erased) and ``patient_keys`` / ``encounter_keys`` (stored under one of these keyed hashes,
    :meth:`~dispatcher.store.sealing.Keyring.candidates`) apply to deliveries only.
    ``business_key`` takes the deliveries (or their attempts) indexed under this keyed hash of a
    business id (:func:`dispatcher.store.search.business_key`: the hash, never the id itself).
    """

    statuses: tuple[str, ...] = ()
    event: str | None = None
    endpoint: str | None = None
    request_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    updated_before: datetime | None = None
    with_payload: bool = False
    patient_keys: tuple[str, ...] = ()
    encounter_keys: tuple[str, ...] = ()
    business_key: str | None = None

    def conditions(self, table: sa.Table = DELIVERIES) -> list[Any]:
        """The WHERE clauses on ``table`` (the deliveries, or the attempts)."""
        if table is not DELIVERIES and (
            self.statuses or self.updated_before is not None or self.with_payload
        ):
            raise ValueError("statuses, updated_before and with_payload select deliveries, not attempts")
        if table is not DELIVERIES and (self.patient_keys or self.encounter_keys):
            raise ValueError("patient and encounter keys select deliveries, not attempts")
        conditions: list[Any] = []
        if self.statuses:
            conditions.append(table.c.status.in_(self.statuses))
        for column in ("event", "endpoint", "request_id"):
            value = getattr(self, column)
            if value:
                conditions.append(table.c[column] == value)
        if self.since is not None:
            conditions.append(table.c.created_at >= self.since)
        if self.until is not None:
            conditions.append(table.c.created_at < self.until)
        if self.updated_before is not None:
            conditions.append(table.c.updated_at < self.updated_before)
        if self.with_payload:
            conditions.append(table.c.payload_erased_at.is_(None))
        if self.patient_keys:
            conditions.append(table.c.patient_key.in_(self.patient_keys))
        if self.encounter_keys:
            conditions.append(table.c.encounter_key.in_(self.encounter_keys))
        if self.business_key:
            conditions.append(table.c.request_id.in_(matching(self.business_key)))
        return conditions


def _after(keys: Sequence[sa.Column[Any]], last: Sequence[Any], descending: bool) -> Any:
    """Rows strictly after ``last`` in the order of ``keys`` (the last key is unique)."""
    first, *rest = keys
    beyond = first < last[0] if descending else first > last[0]
    if not rest:
        return beyond
    # (a > x) OR (a = x AND rest after), written so an index on ``a`` bounds the scan.
    bound = first <= last[0] if descending else first >= last[0]
    return sa.and_(bound, sa.or_(beyond, sa.and_(first == last[0], _after(rest, last[1:], descending))))


def pages(
    engine: Engine,
    selection: Selection,
    columns: Sequence[str] = ("request_id",),
    *,
    table: sa.Table = DELIVERIES,
    order_by: Sequence[str] = ("created_at", "request_id"),
    descending: bool = False,
    batch: int = PAGE_SIZE,
) -> Iterator[list[Row[Any]]]:
    """The selected rows of ``table``, in ``order_by`` order (its last column unique), a page at
    a time. Each row has ``columns`` first, then any ``order_by`` column not among them."""
    keys = [table.c[name] for name in order_by]
    wanted = list(dict.fromkeys([*columns, *order_by]))
    ordering = [key.desc() if descending else key for key in keys]
    last: tuple[Any, ...] | None = None
    while True:
        query = sa.select(*(table.c[name] for name in wanted)).where(*selection.conditions(table))
        if last is not None:
            query = query.where(_after(keys, last, descending))
        with reading(engine) as conn:
            rows = list(conn.execute(query.order_by(*ordering).limit(batch)).all())
        if rows:
            yield rows
        if len(rows) < batch:
            return
        last = tuple(getattr(rows[-1], name) for name in order_by)


def rows(engine: Engine, selection: Selection, columns: Sequence[str], **options: Any) -> Iterator[Row[Any]]:
    """:func:`pages`, row by row."""
    for page in pages(engine, selection, columns, **options):
        yield from page


def first_rows(engine: Engine, selection: Selection, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` selected deliveries, oldest first, for a dry run's listing."""
    for page in pages(engine, selection, DELIVERY_FIELDS, batch=limit):
        return [dict(row._mapping) for row in page]
    return []


def count(engine: Engine, selection: Selection, table: sa.Table = DELIVERIES) -> int:
    """How many rows of ``table`` the selection takes."""
    query = sa.select(sa.func.count()).select_from(table).where(*selection.conditions(table))
    with reading(engine) as conn:
        return int(conn.execute(query).scalar_one())


def count_by_status(engine: Engine, selection: Selection) -> dict[str, int]:
    """Selected deliveries per status (statuses with none are absent)."""
    query = (
        sa.select(DELIVERIES.c.status, sa.func.count())
        .where(*selection.conditions())
        .group_by(DELIVERIES.c.status)
    )
    with reading(engine) as conn:
        return {status: int(n) for status, n in conn.execute(query).all()}


def status_counts(engine: Engine) -> dict[str, int]:
    """Every delivery per status, each known status present (0 when none), without reading the
    final deliveries (:mod:`.counts`): as quick with a million rows as with ten."""
    from .counts import by_status

    with reading(engine) as conn:
        return by_status(conn)


def list_deliveries(
    engine: Engine, selection: Selection | None = None, *, limit: int = 50, offset: int = 0
) -> list[dict[str, Any]]:
    """A listing of the selected deliveries (all, by default), newest first (``log list``)."""
    query = (
        sa.select(*(DELIVERIES.c[name] for name in DELIVERY_FIELDS))
        .where(*(selection or Selection()).conditions())
        .order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.request_id.desc())
        .limit(limit)
        .offset(offset)
    )
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def get_delivery(engine: Engine, request_id: str) -> dict[str, Any] | None:
    """Every column of one delivery, or None."""
    query = sa.select(DELIVERIES).where(DELIVERIES.c.request_id == request_id)
    with reading(engine) as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def endpoints_of(engine: Engine, request_ids: Sequence[str]) -> dict[str, str]:
    """The endpoint of each delivery named (one read for all of them); an unknown id is absent."""
    if not request_ids:
        return {}
    query = sa.select(DELIVERIES.c.request_id, DELIVERIES.c.endpoint).where(
        DELIVERIES.c.request_id.in_(list(request_ids))
    )
    with reading(engine) as conn:
        return {str(r.request_id): str(r.endpoint) for r in conn.execute(query)}


def list_attempts(engine: Engine, request_id: str) -> list[dict[str, Any]]:
    """Every attempt row of one delivery, in order."""
    query = (
        sa.select(ATTEMPTS)
        .where(ATTEMPTS.c.request_id == request_id)
        .order_by(ATTEMPTS.c.attempt, ATTEMPTS.c.id)
    )
    with reading(engine) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
