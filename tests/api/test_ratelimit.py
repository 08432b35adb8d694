"""The per-token rate limit on real Redis: a bucket of ``burst`` refilled at ``per_second``,
shared by every process that reads it; Redis away lets requests go."""

from __future__ import annotations

import redis

from dispatcher.api.ratelimit import RateLimiter, bucket_key
from dispatcher.config.api_settings import RateLimit

GENERATION = "test:api:generation"


def test_a_burst_is_allowed_then_refused_with_the_wait(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(RateLimit(per_second=0.01, burst=3), GENERATION)
    answers = [limiter.admit(redis_client, "caller-a") for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert 90 <= answers[3].retry_after <= 100  # one token comes back every 100 s
    assert limiter.admit(redis_client, "caller-b").allowed  # each caller has its own bucket


def test_two_limiters_share_one_bucket(redis_client: redis.Redis) -> None:
    one = RateLimiter(RateLimit(per_second=0.1, burst=2), GENERATION)
    two = RateLimiter(RateLimit(per_second=0.1, burst=2), GENERATION)
    assert one.admit(redis_client, "caller").allowed
    assert two.admit(redis_client, "caller").allowed
    assert not one.admit(redis_client, "caller").allowed
    assert not two.admit(redis_client, "caller").allowed


def test_tokens_come_back_at_the_rate(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(RateLimit(per_second=1000, burst=1), GENERATION)
    assert limiter.admit(redis_client, "caller").allowed
    # an emptied bucket, one millisecond's refill later (the server's clock, moved by writing the state)
    redis_client.hset(bucket_key("caller"), mapping={"tokens": "0", "at": "0"})
    assert limiter.admit(redis_client, "caller").allowed


def test_no_limit_still_reads_the_generation(redis_client: redis.Redis) -> None:
    redis_client.set(GENERATION, "7")
    limiter = RateLimiter(None, GENERATION)
    answers = [limiter.admit(redis_client, "caller") for _ in range(50)]
    assert all(a.allowed for a in answers)
    assert answers[0].generation == "7"
    assert not redis_client.exists(bucket_key("caller"))


def test_redis_away_lets_the_request_go_without_a_generation() -> None:
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = RateLimiter(RateLimit(), GENERATION)
    answer = limiter.admit(dead, "caller")
    assert answer.allowed and answer.generation is None


def test_after_redis_fails_it_is_not_asked_again_for_a_while(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(RateLimit(per_second=0.01, burst=1), GENERATION)
    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    assert limiter.admit(dead, "caller").generation is None
    assert limiter.skipping()
    # the live server is not asked while skipping: no bucket is made, and no limit applies
    assert all(limiter.admit(redis_client, "caller").allowed for _ in range(3))
    assert not redis_client.exists(bucket_key("caller"))


def test_a_clock_that_went_back_still_refills(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(RateLimit(per_second=1000, burst=1), GENERATION)
    far = 10**13  # the last take stamped far ahead (another server's clock)
    redis_client.hset(bucket_key("caller"), mapping={"tokens": "0", "at": str(far)})
    limiter.admit(redis_client, "caller")  # restamps it at this server's now
    redis_client.hset(bucket_key("caller"), "tokens", "0")
    assert int(float(redis_client.hget(bucket_key("caller"), "at") or 0)) < far
