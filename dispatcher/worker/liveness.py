"""Which workers are alive, and whether Redis is the one they left.

Each worker keeps a key in Redis fresh (its heartbeat thread, every few seconds) and a lease in
the database (:mod:`dispatcher.store.leases`, renewed as often, for as long); a worker is gone
(killed, its host lost) only when both have expired: a Redis flush removes every key, never a
lease, so it never makes a live worker look dead. A worker whose key vanished puts it back at
its next beat. Every heartbeat also records the
worker in a registry (a sorted set scored by the time of its last beat), so any live worker
notices a dead one as soon as the dead one's key expires and has its claims recovered at once,
instead of at the next routine reconcile. A flush empties the registry too; then the dead one
is noticed by its lease expiring instead (each worker's lease thread asks the database for
expired leases after renewing its own). And every heartbeat checks an epoch key that lives as
long as Redis keeps its data: when it is missing, Redis was flushed or restarted empty (its
jobs are gone), and the worker has reconcile run at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import redis

ALIVE_KEY = "dispatcher:worker-alive:{name}"
ALIVE_TTL = 30
"""Seconds a worker's liveness key lives; each worker refreshes it every few seconds."""
LEASE_TTL = timedelta(seconds=ALIVE_TTL)
"""How long a worker's lease in the database runs past its last renewal: as long as its key."""
REGISTRY_KEY = "dispatcher:workers"
"""Every worker that beat, scored by the Redis time of its last beat."""
EPOCH_KEY = "dispatcher:redis-epoch"
"""Set once per Redis data set: missing means Redis lost everything it held."""


def alive_key(worker: str) -> str:
    return ALIVE_KEY.format(name=worker)


def mark_alive(client: redis.Redis, worker: str) -> None:
    client.set(alive_key(worker), "1", ex=ALIVE_TTL)


def mark_dead(client: redis.Redis, worker: str) -> None:
    """A worker stopping cleanly: no claims of its own are left, nothing to recover."""
    with client.pipeline() as pipe:
        pipe.delete(alive_key(worker))
        pipe.zrem(REGISTRY_KEY, worker)
        pipe.execute()


def registered(client: redis.Redis) -> set[str]:
    """Every worker in the registry of heartbeats (alive or not), by name."""
    members = client.zrange(REGISTRY_KEY, 0, -1)
    return {n.decode() if isinstance(n, bytes) else str(n) for n in members}


def alive_workers(client: redis.Redis, workers: Iterable[str]) -> set[str]:
    """Those of ``workers`` whose liveness key is present, in one round trip."""
    names = sorted(set(workers))
    if not names:
        return set()
    flags = client.mget([alive_key(n) for n in names])
    return {name for name, flag in zip(names, flags, strict=True) if flag is not None}


@dataclass
class Beat:
    """What one heartbeat saw."""

    redis_was_empty: bool = False
    """The epoch key was missing: Redis was flushed, or restarted without its data."""
    dead: list[str] = field(default_factory=list)
    """Workers in the registry whose liveness key has expired (gone, unless their lease in the
    database still runs: the housekeeping thread asks the database)."""


def beat(client: redis.Redis, worker: str) -> Beat:
    """Refreshes this worker's liveness key and its place in the registry, checks the epoch, and
    lists the workers that stopped beating, in two round trips."""
    with client.pipeline() as pipe:
        pipe.time()
        pipe.set(alive_key(worker), "1", ex=ALIVE_TTL)
        pipe.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
        (seconds, _micros), _alive, epoch_created = pipe.execute()
        pipe.zadd(REGISTRY_KEY, {worker: seconds})
        pipe.zrangebyscore(REGISTRY_KEY, "-inf", seconds - ALIVE_TTL)
        _added, stale = pipe.execute()
    names = [n.decode() if isinstance(n, bytes) else n for n in stale]
    dead = sorted(set(names) - alive_workers(client, names))
    return Beat(redis_was_empty=bool(epoch_created), dead=dead)


def forget(client: redis.Redis, workers: Iterable[str]) -> None:
    """Drops workers from the registry once their claims are recovered."""
    names = list(workers)
    if names:
        client.zrem(REGISTRY_KEY, *names)
