"""Workers' leases: each running worker's liveness in the database, beside its key in Redis.

A worker renews its lease with its heartbeat (every few seconds, for as long as its liveness key
lives). A worker whose lease has not expired is alive whatever Redis says: a Redis flush, or a
restart without its data, removes every liveness key, and a lease is what keeps reconcile from
taking a live worker's claims meanwhile. A worker stopping cleanly releases its lease; a killed
one's expires. Every worker asks, each time it renews its own, whether another's lease has
expired (:func:`expired`, one indexed query): that worker is gone unless Redis still has its key,
and reconcile runs at once, then deletes the lease (:func:`forget`), so it is reported once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from .engine import reading
from .schema import WORKER_LEASES


def renew(engine: Engine, worker: str, now: datetime, ttl: timedelta) -> None:
    """Makes ``worker``'s lease run until ``now + ttl`` (one upsert: a new worker gets its row)."""
    with engine.begin() as conn:
        conn.execute(
            _upsert(conn.dialect.name), {"worker": worker, "renewed_at": now, "expires_at": now + ttl}
        )


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(WORKER_LEASES)
    return statement.on_conflict_do_update(
        index_elements=[WORKER_LEASES.c.worker],
        set_={
            "renewed_at": statement.excluded["renewed_at"],
            "expires_at": statement.excluded["expires_at"],
        },
    )


def release(engine: Engine, worker: str) -> None:
    """A worker stopping cleanly: it holds no claim any more, its lease ends now."""
    with engine.begin() as conn:
        conn.execute(WORKER_LEASES.delete().where(WORKER_LEASES.c.worker == worker))


def live_workers(engine: Engine, workers: Iterable[str], now: datetime) -> set[str]:
    """Those of ``workers`` whose lease runs past ``now``, in one query (none when none asked)."""
    names = sorted(set(workers))
    if not names:
        return set()
    query = sa.select(WORKER_LEASES.c.worker).where(
        WORKER_LEASES.c.worker.in_(names), WORKER_LEASES.c.expires_at > now
    )
    with reading(engine) as conn:
        return set(conn.execute(query).scalars())


def expired(engine: Engine, now: datetime, other_than: str) -> list[str]:
    """The workers other than ``other_than`` whose lease expired by ``now``, oldest first (one
    query on the index of ``expires_at``; a live lease, or one released, is not listed)."""
    query = (
        sa.select(WORKER_LEASES.c.worker)
        .where(WORKER_LEASES.c.expires_at <= now, WORKER_LEASES.c.worker != other_than)
        .order_by(WORKER_LEASES.c.expires_at)
    )
    with reading(engine) as conn:
        return list(conn.execute(query).scalars())


def forget(engine: Engine, workers: Iterable[str], now: datetime) -> int:
    """Deletes the leases of ``workers`` that are still expired at ``now`` (reconcile found them
    dead and recovered their claims); a worker that renewed meanwhile keeps its lease, and one
    that renews later gets a new row. Returns how many were deleted."""
    names = sorted(set(workers))
    if not names:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            WORKER_LEASES.delete().where(WORKER_LEASES.c.worker.in_(names), WORKER_LEASES.c.expires_at <= now)
        )
    return int(result.rowcount or 0)
