"""The Redis connection every room that talks to Redis opens the same way.

A ``redis+sentinel://`` URL gives a client of the primary that Sentinel names: each new
connection asks the Sentinels where the primary is, and a connection to a primary that died or
was demoted fails once (``ConnectionError``) and is made again to the new one, so a worker, the
scheduler it forks, reconcile and ``dispatch()`` follow a failover without a restart.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.sentinel import Sentinel

from ..config.redis_urls import SentinelAddress, is_sentinel_url, parse_sentinel_url

SENTINEL_TIMEOUT = 1.0
"""Seconds to wait for one Sentinel (then the next is asked)."""


def connect(redis_url: str, socket_timeout: float = 10) -> redis.Redis:
    """A client that fails fast instead of hanging when Redis is away.

    A worker passes a ``socket_timeout`` longer than RQ's blocking dequeue (worker TTL - 15 s).
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": 2,
        "socket_timeout": socket_timeout,
        "health_check_interval": 30,
    }
    if is_sentinel_url(redis_url):
        return primary(parse_sentinel_url(redis_url), **options)
    return redis.Redis.from_url(redis_url, **options)


def primary(address: SentinelAddress, **options: Any) -> redis.Redis:
    """A client of the primary the Sentinels at ``address`` name, wherever it moves."""
    sentinel = Sentinel(
        address.sentinels,
        sentinel_kwargs={
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "socket_timeout": SENTINEL_TIMEOUT,
            "username": address.sentinel_username,
            "password": address.sentinel_password,
        },
    )
    client: redis.Redis = sentinel.master_for(
        address.master, db=address.db, username=address.username, password=address.password, **options
    )
    return client
