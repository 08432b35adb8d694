"""Workers' leases in the database (dispatcher.store.leases), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dispatcher.store import leases
from dispatcher.store.schema import WORKER_LEASES

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def test_a_renewed_lease_is_live_until_it_expires(engine) -> None:
    leases.renew(engine, "w1", NOW, TTL)
    assert leases.live_workers(engine, ["w1", "w2"], NOW) == {"w1"}
    assert leases.live_workers(engine, ["w1"], NOW + TTL - timedelta(seconds=1)) == {"w1"}
    assert leases.live_workers(engine, ["w1"], NOW + TTL) == set()


def test_renewing_moves_the_same_row_forward(engine) -> None:
    leases.renew(engine, "w1", NOW, TTL)
    leases.renew(engine, "w1", NOW + timedelta(seconds=5), TTL)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(WORKER_LEASES)).mappings().all()
    assert [(r["worker"], r["renewed_at"], r["expires_at"]) for r in rows] == [
        ("w1", NOW + timedelta(seconds=5), NOW + timedelta(seconds=5) + TTL)
    ]
    assert leases.live_workers(engine, ["w1"], NOW + TTL + timedelta(seconds=1)) == {"w1"}


def test_a_released_lease_is_gone_at_once(engine) -> None:
    leases.renew(engine, "w1", NOW, TTL)
    leases.renew(engine, "w2", NOW, TTL)
    leases.release(engine, "w1")
    leases.release(engine, "never-leased")  # nothing to do, no error
    assert leases.live_workers(engine, ["w1", "w2"], NOW) == {"w2"}


def test_no_names_asks_nothing(engine) -> None:
    assert leases.live_workers(engine, [], NOW) == set()


def test_long_expired_leases_are_deleted(engine) -> None:
    leases.renew(engine, "gone-long-ago", NOW - timedelta(hours=2), TTL)
    leases.renew(engine, "gone-lately", NOW - timedelta(minutes=5), TTL)
    leases.renew(engine, "alive", NOW, TTL)
    assert leases.delete_expired(engine, NOW - timedelta(hours=1)) == 1
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(WORKER_LEASES.c.worker)).scalars())
    assert left == {"gone-lately", "alive"}
