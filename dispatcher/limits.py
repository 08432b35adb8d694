"""Per-endpoint limits in Redis, shared by every worker: ``max_concurrency`` and ``rate_per_second``.

Concurrency is a set of leases (a sorted set scored by expiry), not a counter: a worker killed
mid-attempt cannot hold its slot for longer than the lease. Rate is a token bucket holding at
most one second of tokens. Both are one Lua script each, so they are atomic across workers.
A delivery that finds its endpoint at a limit is not attempted: its claim is given back and
the job comes back a second later, and the worker moves on to other endpoints' deliveries.
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
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local capacity = math.max(1, rate)
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate)
local granted = 0
if tokens >= 1 then tokens = tokens - 1 granted = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 3600)
return granted
"""


def slots_key(endpoint: str) -> str:
    return f"dispatcher:endpoint-slots:{endpoint}"


def rate_key(endpoint: str) -> str:
    return f"dispatcher:endpoint-rate:{endpoint}"


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def acquire(client: redis.Redis, endpoint: Endpoint, request_id: str, lease_seconds: float) -> bool:
    """Takes a slot (and a token) for one attempt; False when the endpoint is at a limit."""
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
            return False
    if endpoint.rate_per_second is not None and not client.eval(
        _TAKE_TOKEN, 1, rate_key(endpoint.name), endpoint.rate_per_second
    ):
        release(client, endpoint, request_id)
        return False
    return True


def release(client: redis.Redis, endpoint: Endpoint, request_id: str) -> None:
    if endpoint.max_concurrency is not None:
        client.zrem(slots_key(endpoint.name), request_id)


def is_limited(endpoint: Endpoint) -> bool:
    return endpoint.max_concurrency is not None or endpoint.rate_per_second is not None
