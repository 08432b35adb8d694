"""Per-endpoint concurrency leases and rate tokens on the real Redis."""

from __future__ import annotations

import time

from dispatcher.config import Endpoint
from dispatcher.limits import acquire, release, slots_key


def test_concurrency_slots_are_leases(redis_client):
    endpoint = Endpoint(name="slow", url="https://slow.example.com", max_concurrency=2)
    assert acquire(redis_client, endpoint, "a", 30)
    assert acquire(redis_client, endpoint, "b", 30)
    assert not acquire(redis_client, endpoint, "c", 30)
    assert acquire(redis_client, endpoint, "a", 30)  # the holder may take its own slot again
    release(redis_client, endpoint, "a")
    assert acquire(redis_client, endpoint, "c", 30)


def test_a_dead_holders_slot_expires(redis_client):
    endpoint = Endpoint(name="slow", url="https://slow.example.com", max_concurrency=1)
    assert acquire(redis_client, endpoint, "killed", 0.5)
    assert not acquire(redis_client, endpoint, "next", 30)
    time.sleep(0.6)
    assert acquire(redis_client, endpoint, "next", 30)
    assert redis_client.zrange(slots_key("slow"), 0, -1) == [b"next"]


def test_rate_per_second_is_a_token_bucket(redis_client):
    endpoint = Endpoint(name="rated", url="https://rated.example.com", rate_per_second=5)
    granted = sum(acquire(redis_client, endpoint, f"r{i}", 30) for i in range(20))
    assert granted == 5  # one second's worth at once, no more
    time.sleep(0.45)
    assert sum(acquire(redis_client, endpoint, f"s{i}", 30) for i in range(20)) in (2, 3)  # ~0.45 s of refill
