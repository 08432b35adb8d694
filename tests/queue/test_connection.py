"""Every Redis client made one way (dispatcher.queue.connection): fails fast, follows Sentinel.
The failover itself is exercised in tests/e2e/test_sentinel_e2e.py."""

from __future__ import annotations

import redis
from redis.sentinel import SentinelConnectionPool

from dispatcher.queue.connection import SENTINEL_TIMEOUT, connect


def test_a_plain_url_gives_a_client_that_fails_fast(redis_url) -> None:
    client = connect(redis_url, socket_timeout=3)
    try:
        assert client.ping() is True
        options = client.connection_pool.connection_kwargs
        assert (options["socket_connect_timeout"], options["socket_timeout"]) == (2, 3)
        assert options["health_check_interval"] == 30
    finally:
        client.close()


def test_a_sentinel_url_gives_a_client_of_the_primary_the_sentinels_name() -> None:
    """Made without connecting: each new connection asks the Sentinels where the primary is."""
    client = connect("redis+sentinel://app:secret@sentinel-a:26379,sentinel-b:26380/clinic-primary/3")
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "clinic-primary"
    assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "secret"
    sentinels = pool.sentinel_manager.sentinels
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert sentinels[0].connection_pool.connection_kwargs["socket_timeout"] == SENTINEL_TIMEOUT
    assert isinstance(client, redis.Redis)
