"""The alerts' Redis lock (dispatcher.alerts.lock), on the real Redis: one holder at a time, an
expiry of its own, and a release that never frees another holder's lock."""

from __future__ import annotations

from dispatcher.alerts import lock


def test_one_holder_at_a_time_until_it_releases(redis_client) -> None:
    token = lock.acquire(redis_client)
    assert token is not None
    assert lock.acquire(redis_client) is None
    assert 0 < redis_client.pttl(lock.KEY) <= lock.TTL_SECONDS * 1000
    assert lock.release(redis_client, token) is True
    assert redis_client.exists(lock.KEY) == 0
    again = lock.acquire(redis_client)
    assert again is not None and again != token


def test_a_holder_whose_lock_expired_does_not_free_the_next_holders(redis_client) -> None:
    first = lock.acquire(redis_client, ttl_seconds=60)
    assert first is not None
    redis_client.delete(lock.KEY)  # its time ran out (forced, not waited for)
    second = lock.acquire(redis_client)
    assert second is not None
    assert lock.release(redis_client, first) is False
    assert redis_client.get(lock.KEY) == second.encode()
    assert lock.acquire(redis_client) is None
    assert lock.release(redis_client, second) is True


def test_the_lock_lives_only_its_ttl(redis_client) -> None:
    assert lock.acquire(redis_client, ttl_seconds=0.05) is not None
    assert 0 < redis_client.pttl(lock.KEY) <= 50
