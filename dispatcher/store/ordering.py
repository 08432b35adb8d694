"""Per-key ordering in the log: where a delivery to an ordered endpoint stands in its key.

An ordered delivery carries ``ordering_key`` (a keyed hash of its key: an encounter, an order,
a patient) and ``ordering_seq`` (its place: dispatch order). The order is kept by the database
alone:

- **Numbering.** A new delivery is numbered after the last of its key (``max + 1``) while its
  transaction holds the key: a PostgreSQL advisory lock on the key as stored (released at
  commit), or SQLite's write lock. Every writer that numbers -- dispatch, dispatch_many, the
  outbox, replay (:func:`number`), a retry of one delivery or in bulk (:func:`renumber`) --
  takes the same lock, so two of them to one key are numbered in the order they commit, and a
  delivery numbered lower is always visible to anyone who sees a higher one.
- **The claim** (:func:`no_earlier_pending`, part of every claim's UPDATE) takes an ordered
  delivery only when no delivery of its key numbered lower is still pending (queued, in
  flight, retrying): delivery n+1 is never attempted before delivery n is final, and only one
  of a key is in flight at a time. A retried delivery is numbered again, at the back.
- **The head** of a key is its lowest-numbered pending delivery (:func:`next_heads`); a
  delivery that is not (:func:`parked`) waits, and other keys never wait for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..vocabulary import CLAIMABLE_STATUSES, PENDING_STATUSES, DeliveryStatus
from .engine import reading
from .schema import DELIVERIES

_EARLIER = DELIVERIES.alias("earlier")


def lock_id(endpoint: str, key: str) -> int:
    """A signed 64-bit number for one key of one endpoint. The advisory lock that holds a key is
    that of its stored form (:func:`key_locks`); two keys sharing one only wait for each other."""
    digest = hashlib.sha256(f"{endpoint}\x00{key}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def no_earlier_pending() -> Any:
    """The claim's condition: unordered, or no delivery of the same key numbered lower is pending."""
    earlier = (
        sa.select(_EARLIER.c.request_id)
        .where(
            _EARLIER.c.endpoint == DELIVERIES.c.endpoint,
            _EARLIER.c.ordering_key == DELIVERIES.c.ordering_key,
            _EARLIER.c.ordering_seq < DELIVERIES.c.ordering_seq,
            _EARLIER.c.status.in_(_pending()),
        )
        .exists()
    )
    return sa.or_(DELIVERIES.c.ordering_key.is_(None), ~earlier)


def _pending() -> Any:
    """PENDING_STATUSES written into the SQL as literals, not bound: a query reaches the partial
    index ``ix_webhook_deliveries_ordering_pending`` (the pending deliveries alone) only when it
    states its WHERE clause -- SQLite matches the words, and PostgreSQL's generic plan for a
    prepared statement cannot know what a bound list holds."""
    return sa.bindparam("pending", list(PENDING_STATUSES), unique=True, expanding=True, literal_execute=True)


def key_locks(endpoint: str, candidates: Iterable[str]) -> set[int]:
    """The advisory locks that hold a key: one per form it may be stored in (``candidates``).
    A dispatch knows every form of its key and takes them all; a retry knows the one its
    delivery was stored in, which is among them: the two always share a lock."""
    return {lock_id(endpoint, stored) for stored in candidates}


def hold(conn: Connection, locks: Iterable[int]) -> None:
    """Takes ``locks`` in the caller's transaction, in ascending order (so two writers never
    wait on each other), until it ends; SQLite's write lock already holds every key."""
    if conn.dialect.name != "postgresql":
        return
    for lock in sorted(set(locks)):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(lock)))


def number(
    conn: Connection, rows: list[dict[str, Any]], keys: Sequence[tuple[int, tuple[str, ...]] | None]
) -> tuple[list[int], list[int]]:
    """Numbers the new ordered rows (``keys[i]``: the key's id and its stored-key candidates of
    ``rows[i]``, None for an unordered one), in the caller's transaction: every key is held
    first (:func:`key_locks`, :func:`hold`), then each has its stored key chosen (the one its
    pending deliveries use, when keys were rotated meanwhile, else the first) and its rows
    numbered after its last, in the order given.

    Returns the indexes of the rows that are their key's head (nothing pending before them),
    and of the first queued row of each key that waits behind an earlier pending delivery: that
    delivery may become final before this transaction commits, so the caller looks again after.
    """
    heads: list[int] = []
    behind: list[int] = []
    by_key: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            by_key.setdefault((rows[i]["endpoint"], key[0]), []).append(i)
    locks: set[int] = set()
    for (endpoint, _), indexes in by_key.items():
        key = keys[indexes[0]]
        assert key is not None
        locks |= key_locks(endpoint, key[1])
    hold(conn, locks)
    for endpoint, lock in sorted(by_key):
        indexes = by_key[(endpoint, lock)]
        candidates = keys[indexes[0]][1]  # type: ignore[index]
        stored = _stored_key(conn, endpoint, candidates)
        of_key = (DELIVERIES.c.endpoint == endpoint, DELIVERIES.c.ordering_key == stored)
        last = conn.execute(sa.select(sa.func.max(DELIVERIES.c.ordering_seq)).where(*of_key)).scalar()
        waiting = conn.execute(
            sa.select(sa.exists().where(*of_key, DELIVERIES.c.status.in_(_pending())))
        ).scalar()
        for offset, i in enumerate(indexes, 1):
            rows[i]["ordering_key"], rows[i]["ordering_seq"] = stored, (last or 0) + offset
        queued = [i for i in indexes if rows[i]["status"] in PENDING_STATUSES]
        if queued:
            (behind if waiting else heads).append(queued[0])
    return heads, behind


def _stored_key(conn: Connection, endpoint: str, candidates: tuple[str, ...]) -> str:
    """The first candidate, unless deliveries still pending were stored under another (the
    storage keys were rotated while they waited): the key stays one key."""
    if len(candidates) == 1:
        return candidates[0]
    found = conn.execute(
        sa.select(DELIVERIES.c.ordering_key)
        .where(
            DELIVERIES.c.endpoint == endpoint,
            DELIVERIES.c.ordering_key.in_(candidates),
            DELIVERIES.c.status.in_(_pending()),
        )
        .limit(1)
    ).scalar()
    return found or candidates[0]


def renumber(conn: Connection, request_ids: Sequence[str]) -> None:
    """Puts the ordered ones of ``request_ids`` (re-opened by a retry) at the back of their key,
    in the order given, in the caller's transaction."""
    if not request_ids:
        return
    rows = conn.execute(
        sa.select(DELIVERIES.c.request_id, DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key).where(
            DELIVERIES.c.request_id.in_(list(request_ids)), DELIVERIES.c.ordering_key.is_not(None)
        )
    ).all()
    place = {rid: i for i, rid in enumerate(request_ids)}
    ordered = sorted(rows, key=lambda r: place[r.request_id])
    values = [{"endpoint": r.endpoint, "status": DeliveryStatus.QUEUED} for r in ordered]
    # Numbered under the lock of the key as stored: the very lock a dispatch to the key takes.
    number(conn, values, [(lock_id(r.endpoint, r.ordering_key), (r.ordering_key,)) for r in ordered])
    for row, value in zip(ordered, values, strict=True):
        conn.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.request_id == row.request_id)
            .values(ordering_seq=value["ordering_seq"])
        )


def _heads_of(keys: Any) -> Any:
    """The lowest-numbered pending delivery of each of ``keys`` ((endpoint, stored key) pairs)."""
    ranked = (
        sa.select(
            DELIVERIES.c.request_id,
            DELIVERIES.c.endpoint,
            DELIVERIES.c.ordering_key,
            DELIVERIES.c.ordering_seq,
            DELIVERIES.c.status,
            DELIVERIES.c.next_attempt_at,
            DELIVERIES.c.created_at,
            sa.func.row_number()
            .over(
                partition_by=(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key),
                order_by=DELIVERIES.c.ordering_seq,
            )
            .label("place"),
        )
        .where(keys, DELIVERIES.c.ordering_key.is_not(None), DELIVERIES.c.status.in_(_pending()))
        .subquery()
    )
    return sa.select(ranked).where(ranked.c.place == 1)


def next_heads(engine: Engine, keys: Iterable[tuple[str, str]]) -> list[Any]:
    """The head of each key that is waiting to be claimed (queued or retrying): rows of
    ``request_id``, ``status``, ``next_attempt_at``. A key whose head is in flight, or that has
    nothing pending, gives none."""
    pairs = sorted(set(keys))
    if not pairs:
        return []
    condition = sa.tuple_(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key).in_(pairs)
    with reading(engine) as conn:
        heads = conn.execute(_heads_of(condition)).all()
    return [h for h in heads if h.status in CLAIMABLE_STATUSES]


def heads_after(engine: Engine, request_ids: Sequence[str]) -> list[Any]:
    """:func:`next_heads` of the keys of the ordered ones of ``request_ids``, in one statement."""
    if not request_ids:
        return []
    mine = DELIVERIES.alias("mine")
    keys = (
        sa.select(mine.c.endpoint, mine.c.ordering_key)
        .where(mine.c.request_id.in_(list(request_ids)), mine.c.ordering_key.is_not(None))
        .distinct()
    )
    condition = sa.tuple_(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key).in_(keys)
    with reading(engine) as conn:
        heads = conn.execute(_heads_of(condition)).all()
    return [h for h in heads if h.status in CLAIMABLE_STATUSES]


def keys_of(engine: Engine, request_ids: Sequence[str]) -> list[tuple[str, str]]:
    """The (endpoint, stored key) of the ordered ones of ``request_ids``."""
    if not request_ids:
        return []
    query = (
        sa.select(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key)
        .where(DELIVERIES.c.request_id.in_(list(request_ids)), DELIVERIES.c.ordering_key.is_not(None))
        .distinct()
    )
    with reading(engine) as conn:
        return [(r.endpoint, r.ordering_key) for r in conn.execute(query)]


def _standing(
    engine: Engine, request_ids: Sequence[str]
) -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """The ordered ones of ``request_ids`` (by id), and the head of each of their keys."""
    mine = sa.select(
        DELIVERIES.c.request_id, DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key, DELIVERIES.c.ordering_seq
    ).where(DELIVERIES.c.request_id.in_(list(request_ids)), DELIVERIES.c.ordering_key.is_not(None))
    with reading(engine) as conn:
        rows = {r.request_id: r for r in conn.execute(mine)}
        if not rows:
            return {}, {}
        condition = sa.tuple_(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key).in_(
            sorted({(r.endpoint, r.ordering_key) for r in rows.values()})
        )
        heads = {(h.endpoint, h.ordering_key): h for h in conn.execute(_heads_of(condition))}
    return rows, heads


def parked(engine: Engine, request_ids: Sequence[str]) -> dict[str, datetime | None]:
    """Those of ``request_ids`` waiting behind the head of their key, each with when that head
    is next due (its retry's time; None when it is queued or in flight)."""
    if not request_ids:
        return {}
    rows, heads = _standing(engine, request_ids)
    waiting: dict[str, datetime | None] = {}
    for row in rows.values():
        head = heads.get((row.endpoint, row.ordering_key))
        if head is not None and head.ordering_seq < row.ordering_seq:
            waiting[row.request_id] = head.next_attempt_at if head.status == "retrying" else None
    return waiting


def heads_among(engine: Engine, request_ids: Sequence[str]) -> set[str]:
    """Those of ``request_ids`` that are ordered and the head of their key now."""
    if not request_ids:
        return set()
    rows, heads = _standing(engine, request_ids)
    return {
        rid
        for rid, row in rows.items()
        if (head := heads.get((row.endpoint, row.ordering_key))) is not None and head.request_id == rid
    }


def waiting_keys(engine: Engine, endpoints: Sequence[str], now: datetime) -> dict[str, dict[str, Any]]:
    """Per ordered endpoint: how many keys have deliveries waiting behind their head, and the
    age in seconds of the oldest such head (since it was dispatched)."""
    report: dict[str, dict[str, Any]] = {
        name: {"keys_waiting": 0, "oldest_waiting_head_age_seconds": None} for name in endpoints
    }
    if not endpoints:
        return report
    condition = sa.and_(DELIVERIES.c.endpoint.in_(list(endpoints)), DELIVERIES.c.ordering_key.is_not(None))
    counted = (
        sa.select(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key, sa.func.count().label("pending"))
        .where(condition, DELIVERIES.c.status.in_(_pending()))
        .group_by(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key)
        .having(sa.func.count() > 1)
    )
    with reading(engine) as conn:
        busy = [(r.endpoint, r.ordering_key) for r in conn.execute(counted)]
        heads = (
            conn.execute(
                _heads_of(sa.tuple_(DELIVERIES.c.endpoint, DELIVERIES.c.ordering_key).in_(busy))
            ).all()
            if busy
            else []
        )
    for head in heads:
        entry = report[head.endpoint]
        entry["keys_waiting"] += 1
        age = (now - head.created_at).total_seconds()
        oldest = entry["oldest_waiting_head_age_seconds"]
        entry["oldest_waiting_head_age_seconds"] = age if oldest is None else max(oldest, age)
    return report
