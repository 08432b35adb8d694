"""Per-endpoint limits in Redis, shared by every worker: ``max_concurrency`` and ``rate_per_second``.

Concurrency is a set of leases (a sorted set scored by expiry), not a counter: a worker killed
mid-attempt cannot hold its slot for longer than the lease. Rate is a token bucket holding one
second of tokens (at least one). Both are one Lua script each, so they are atomic across workers.

A delivery that finds its endpoint at a limit is not attempted: its claim is given back, the
worker moves on to other endpoints' deliveries, and the job comes back later. At the
concurrency limit that is a second later (a slot may free up any moment). At the rate limit the
bucket books the delivery the next free turn (the bucket goes into debt, GCRA-style) and says
how long until then: the job comes back at its turn and the bucket lets it through (it still
needs a concurrency slot, if the endpoint has that limit too), and deliveries that arrive
meanwhile queue behind it. So a backlog of N for an endpoint limited to r per second costs
about one deferral each (two when a short wait is cut short by RQ's whole-second schedule), not
one every second for N/r seconds. Turns are booked at most ``BOOK_AHEAD_SECONDS`` ahead.
"""

from __future__ import annotations

import redis

from .. import lua
from ..config import Endpoint

_ACQUIRE_SLOT = redis.Redis().register_script(lua.load(__package__, "acquire_slot.lua"))
_TAKE_TOKEN = redis.Redis().register_script(lua.load(__package__, "take_token.lua"))
"""Takes a token, or books the request its turn: see ``take_token.lua``. Both scripts run by
EVALSHA (sent once per Redis server); no connection is made here."""


BOOKING_GRACE_SECONDS = 3.0
"""How late a booked delivery may come back and still use its turn (RQ's whole-second schedule
and the scheduler's polling bring it back up to about 3 s after its turn)."""
BOOK_AHEAD_SECONDS = 300.0
"""A delivery is booked at most this far ahead; further, it comes back then and asks again."""
SLOT_WAIT_SECONDS = 1.0
"""How long a delivery that found every concurrency slot taken waits before asking again."""


def slots_key(endpoint: str) -> str:
    return f"dispatcher:endpoint-slots:{endpoint}"


def rate_key(endpoint: str) -> str:
    return f"dispatcher:endpoint-rate:{endpoint}"


def booking_key(endpoint: str, request_id: str) -> str:
    return f"dispatcher:endpoint-rate:{endpoint}:booked:{request_id}"


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def acquire(client: redis.Redis, endpoint: Endpoint, request_id: str, lease_seconds: float) -> float:
    """Takes a slot and a token for one attempt. Returns 0 when it may go now, else the seconds
    to wait before asking again: its slot is given back, and at the rate limit the bucket has
    booked it that turn (see ``_TAKE_TOKEN``), so it comes back then and is let through."""
    if endpoint.max_concurrency is not None:
        granted = _ACQUIRE_SLOT(
            keys=[slots_key(endpoint.name)],
            args=[_redis_now(client), endpoint.max_concurrency, request_id, lease_seconds],
            client=client,
        )
        if not granted:
            return SLOT_WAIT_SECONDS
    if endpoint.rate_per_second is not None:
        wait = float(
            _TAKE_TOKEN(
                keys=[rate_key(endpoint.name), booking_key(endpoint.name, request_id)],
                args=[endpoint.rate_per_second, BOOKING_GRACE_SECONDS, BOOK_AHEAD_SECONDS],
                client=client,
            )
        )
        if wait > 0:
            release(client, endpoint, request_id)
            return wait
    return 0.0


def release(client: redis.Redis, endpoint: Endpoint, request_id: str) -> None:
    if endpoint.max_concurrency is not None:
        client.zrem(slots_key(endpoint.name), request_id)


def is_limited(endpoint: Endpoint) -> bool:
    return endpoint.max_concurrency is not None or endpoint.rate_per_second is not None
