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


def left(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(WORKER_LEASES.c.worker)).scalars())


def test_expired_lists_the_other_workers_whose_lease_ran_out_oldest_first(engine) -> None:
    leases.renew(engine, "gone-lately", NOW - timedelta(minutes=1), TTL)
    leases.renew(engine, "gone-long-ago", NOW - timedelta(hours=2), TTL)
    leases.renew(engine, "expiring-now", NOW - TTL, TTL)  # expires_at == NOW: expired
    leases.renew(engine, "me", NOW - timedelta(hours=1), TTL)  # the asker's own: never listed
    leases.renew(engine, "alive", NOW, TTL)
    leases.renew(engine, "released", NOW - timedelta(hours=1), TTL)
    leases.release(engine, "released")
    assert leases.expired(engine, NOW, other_than="me") == ["gone-long-ago", "gone-lately", "expiring-now"]
    assert leases.expired(engine, NOW - timedelta(days=1), other_than="me") == []


def test_forget_deletes_only_the_named_leases_still_expired(engine) -> None:
    leases.renew(engine, "dead", NOW - timedelta(minutes=1), TTL)
    leases.renew(engine, "renewed-meanwhile", NOW, TTL)
    leases.renew(engine, "dead-not-named", NOW - timedelta(minutes=1), TTL)
    assert leases.forget(engine, ["dead", "renewed-meanwhile", "never-leased"], NOW) == 1
    assert left(engine) == {"renewed-meanwhile", "dead-not-named"}
    assert leases.forget(engine, [], NOW) == 0
    leases.renew(engine, "dead", NOW + TTL, TTL)  # it was alive after all: renewing makes it again
    assert leases.live_workers(engine, ["dead"], NOW + TTL) == {"dead"}
