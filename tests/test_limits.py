"""Per-endpoint concurrency leases and rate tokens on the real Redis."""

from __future__ import annotations

import time

import pytest

from dispatcher.config import Endpoint
from dispatcher.limits import SLOT_WAIT_SECONDS, acquire, booking_key, release, slots_key


def test_concurrency_slots_are_leases(redis_client):
    endpoint = Endpoint(name="slow", url="https://slow.example.com", max_concurrency=2)
    assert acquire(redis_client, endpoint, "a", 30) == 0
    assert acquire(redis_client, endpoint, "b", 30) == 0
    assert acquire(redis_client, endpoint, "c", 30) == SLOT_WAIT_SECONDS
    assert acquire(redis_client, endpoint, "a", 30) == 0  # the holder may take its own slot again
    release(redis_client, endpoint, "a")
    assert acquire(redis_client, endpoint, "c", 30) == 0


def test_a_dead_holders_slot_expires(redis_client):
    endpoint = Endpoint(name="slow", url="https://slow.example.com", max_concurrency=1)
    assert acquire(redis_client, endpoint, "killed", 0.5) == 0
    assert acquire(redis_client, endpoint, "next", 30) > 0
    time.sleep(0.6)
    assert acquire(redis_client, endpoint, "next", 30) == 0
    assert redis_client.zrange(slots_key("slow"), 0, -1) == [b"next"]


def test_rate_per_second_is_a_token_bucket(redis_client):
    endpoint = Endpoint(name="rated", url="https://rated.example.com", rate_per_second=5)
    waits = [acquire(redis_client, endpoint, f"r{i}", 30) for i in range(20)]
    assert waits[:5] == [0] * 5  # one second's worth at once, no more
    # the rest are booked a turn each, 1/5 s apart, in the order they asked
    assert waits[5:] == pytest.approx([0.2 * k for k in range(1, 16)], abs=0.05)


def test_a_booked_delivery_goes_at_its_turn_and_nobody_jumps_the_queue(redis_client):
    endpoint = Endpoint(name="rated", url="https://rated.example.com", rate_per_second=10)
    for i in range(10):
        assert acquire(redis_client, endpoint, f"r{i}", 30) == 0
    first = acquire(redis_client, endpoint, "booked-1", 30)
    second = acquire(redis_client, endpoint, "booked-2", 30)
    assert first == pytest.approx(0.1, abs=0.03) and second == pytest.approx(0.2, abs=0.03)

    # asking again before its turn: the time left, and no second booking
    again = acquire(redis_client, endpoint, "booked-2", 30)
    assert 0 < again <= second
    assert redis_client.exists(booking_key("rated", "booked-2"))

    time.sleep(second + 0.02)
    # a newcomer queues behind the two booked turns (their tokens are spent) ...
    assert acquire(redis_client, endpoint, "newcomer", 30) > 0
    # ... and the booked ones go without a token, once each
    assert acquire(redis_client, endpoint, "booked-1", 30) == 0
    assert acquire(redis_client, endpoint, "booked-2", 30) == 0
    assert not redis_client.exists(booking_key("rated", "booked-2"))


def test_a_booked_delivery_at_the_concurrency_limit_keeps_its_turn(redis_client):
    endpoint = Endpoint(name="both", url="https://both.example.com", max_concurrency=1, rate_per_second=1)
    assert acquire(redis_client, endpoint, "a", 30) == 0
    release(redis_client, endpoint, "a")
    wait = acquire(redis_client, endpoint, "b", 30)  # a slot, but no token: booked, slot given back
    assert wait == pytest.approx(1.0, abs=0.05)
    assert redis_client.zcard(slots_key("both")) == 0
    assert acquire(redis_client, endpoint, "c", 30) > wait  # booked after b
    assert acquire(redis_client, endpoint, "holder", 30) > 0  # no token either
    time.sleep(wait + 0.02)
    assert acquire(redis_client, endpoint, "b", 30) == 0  # its turn: goes
