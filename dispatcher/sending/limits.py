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

from .config import Endpoint

_ACQUIRE_SLOT = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])) + 60)
  return 1
end
return 0
"""

_TAKE_TOKEN = """
local rate = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local ahead = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local booked = tonumber(redis.call('GET', KEYS[2]))
if booked then
  if now < booked then return tostring(booked - now) end
  redis.call('DEL', KEYS[2])
  if now <= booked + grace then return '0' end
end
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local capacity = math.max(1, rate)
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
local beyond = wait > ahead
if not beyond then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(wait) + 3600)
if beyond then return tostring(ahead) end
if wait == 0 then return '0' end
redis.call('SET', KEYS[2], tostring(now + wait), 'EX', math.ceil(wait + grace) + 3600)
return tostring(wait)
"""
"""Takes a token, or books the request the next free turn (the token it will use is taken now:
the bucket goes into debt). Returns the seconds until the request may go (``'0'``: now), as a
string: Redis truncates a Lua number to an integer. A booked request asking again before its
turn gets the time left and is not booked twice; at its turn, or up to ``grace`` seconds after,
it goes without a token; later than that its turn is gone and it asks like a newcomer. A request
that would wait more than ``ahead`` seconds is not booked (no debt) and is told to come back
then: what a stalled or disabled backlog can hold of the bucket is bounded."""

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
        granted = client.eval(
            _ACQUIRE_SLOT,
            1,
            slots_key(endpoint.name),
            _redis_now(client),
            endpoint.max_concurrency,
            request_id,
            lease_seconds,
        )
        if not granted:
            return SLOT_WAIT_SECONDS
    if endpoint.rate_per_second is not None:
        wait = float(
            client.eval(
                _TAKE_TOKEN,
                2,
                rate_key(endpoint.name),
                booking_key(endpoint.name, request_id),
                endpoint.rate_per_second,
                BOOKING_GRACE_SECONDS,
                BOOK_AHEAD_SECONDS,
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
