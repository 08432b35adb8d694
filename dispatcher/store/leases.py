"""Workers' leases: each running worker's liveness in the database, beside its key in Redis.

A worker renews its lease with its heartbeat (every few seconds, for as long as its liveness key
lives). A worker whose lease has not expired is alive whatever Redis says: a Redis flush, or a
restart without its data, removes every liveness key, and a lease is what keeps reconcile from
taking a live worker's claims meanwhile. A worker stopping cleanly releases its lease; a killed
one's expires. Rows expired long ago are deleted by the routine reconcile.
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


def delete_expired(engine: Engine, before: datetime) -> int:
    """Deletes the leases that expired before ``before`` (workers gone long ago); returns how many."""
    with engine.begin() as conn:
        result = conn.execute(WORKER_LEASES.delete().where(WORKER_LEASES.c.expires_at < before))
    return int(result.rowcount or 0)
