"""Idempotent dispatch in the log: the first dispatch with a key stores its deliveries; a repeat
(same key, same dispatch, within the TTL) gets the first one's request ids and stores nothing.
A key past its TTL is free again; the workers' retention run deletes those rows
(:func:`delete_expired`).

The key and the dispatch's fingerprint (its event and data, and the endpoints, ordering key
and dispatched_by it was given: :func:`dispatcher.intake.keys.idempotency_for`) are stored as
keyed hashes (:meth:`~dispatcher.store.sealing.Keyring.index`, every configured key tried when
looking one up), never as given: a caller's key may name a patient. The table's primary key decides a race:
each dispatch inserts its key's row in the transaction that stores its deliveries (``ON
CONFLICT DO NOTHING``: PostgreSQL waits for a transaction holding the same key to end, SQLite
runs one writer at a time), and the one whose row went in stores; the others read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ..errors import IdempotencyConflict
from .engine import reading
from .schema import IDEMPOTENCY


@dataclass(frozen=True)
class IdempotencyKey:
    """One item's key, as given (for errors) and as stored and looked up."""

    given: str
    hashes: tuple[str, ...]
    """The stored form under each configured storage key, the first one's first."""
    fingerprints: tuple[str, ...]
    """The event and data's fingerprint under each configured storage key, the first one's first."""
    event: str


def claim(
    conn: Connection,
    keys: Sequence[IdempotencyKey],
    request_ids: Sequence[Sequence[str]],
    now: datetime,
    ttl: float,
) -> dict[str, list[str]]:
    """In the dispatch's transaction, before its deliveries are stored: records each key with
    the request ids its item will store. Returns, by key as given, the request ids a repeated
    key's first dispatch stored (its item must store nothing).

    Raises:
        IdempotencyConflict: a key is in use (within the TTL) for another event or other data.
    """
    repeated: dict[str, list[str]] = {}
    expired = now - timedelta(seconds=ttl)
    for key, ids in zip(keys, request_ids, strict=True):
        conn.execute(
            IDEMPOTENCY.delete().where(
                IDEMPOTENCY.c.key_hash.in_(key.hashes), IDEMPOTENCY.c.created_at < expired
            )
        )
        first = _first(conn, key)
        if first is None:
            first = _insert(conn, key, ids, now)
        if first is not None:
            repeated[key.given] = first
    return repeated


def _first(conn: Connection, key: IdempotencyKey) -> list[str] | None:
    """The request ids stored for ``key`` by an earlier dispatch, or None."""
    row = conn.execute(sa.select(IDEMPOTENCY).where(IDEMPOTENCY.c.key_hash.in_(key.hashes)).limit(1)).first()
    if row is None:
        return None
    if row.event != key.event or row.fingerprint not in key.fingerprints:
        raise IdempotencyConflict(key.given)
    ids: list[str] = json.loads(row.request_ids)
    return ids


def _insert(
    conn: Connection, key: IdempotencyKey, request_ids: Sequence[str], now: datetime
) -> list[str] | None:
    """Inserts the key's row; None when it went in, else the winner's request ids (a dispatch
    with the same key committed meanwhile)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(IDEMPOTENCY)
        .values(
            key_hash=key.hashes[0],
            event=key.event,
            fingerprint=key.fingerprints[0],
            request_ids=json.dumps(list(request_ids)),
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(IDEMPOTENCY.c.key_hash)
    )
    if conn.execute(statement).first() is not None:
        return None
    return _first(conn, key)


def repeated(engine: Engine, key: IdempotencyKey, now: datetime, ttl: float) -> list[str] | None:
    """Outside any transaction, before a dispatch builds anything: the request ids of a live
    first dispatch with this key, or None (then the dispatch goes on, and :func:`claim` decides).

    Raises:
        IdempotencyConflict: the key is in use for another event or other data.
    """
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(IDEMPOTENCY.c.created_at).where(IDEMPOTENCY.c.key_hash.in_(key.hashes)).limit(1)
        ).first()
        if row is None or row.created_at < now - timedelta(seconds=ttl):
            return None
        return _first(conn, key)


def count_expired(engine: Engine, before: datetime) -> int:
    """How many keys were recorded before ``before``."""
    with reading(engine) as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(IDEMPOTENCY).where(IDEMPOTENCY.c.created_at < before)
            ).scalar_one()
        )


def delete_expired(
    engine: Engine, before: datetime, batch: int = 1000, stop: Callable[[], bool] | None = None
) -> int:
    """Deletes the keys recorded before ``before`` (their TTL over: the keys are free again),
    a batch per transaction, until none is left or ``stop()`` says so after a batch; returns
    how many. The workers' retention run calls it (:mod:`dispatcher.worker.retention`)."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            old = list(
                conn.execute(
                    sa.select(IDEMPOTENCY.c.key_hash).where(IDEMPOTENCY.c.created_at < before).limit(batch)
                ).scalars()
            )
            if old:
                conn.execute(IDEMPOTENCY.delete().where(IDEMPOTENCY.c.key_hash.in_(old)))
        deleted += len(old)
        if len(old) < batch or (stop is not None and stop()):
            return deleted
