"""Per-endpoint concurrency leases and rate tokens on the real Redis."""

from __future__ import annotations

import time

import pytest

from dispatcher.config import Endpoint
from dispatcher.sending import limits
from dispatcher.sending.limits import (
    BOOKING_GRACE_SECONDS,
    SLOT_WAIT_SECONDS,
    acquire,
    booking_key,
    release,
    slots_key,
)


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
    assert 0 < waits[5] <= 0.2
    steps = [later - earlier for earlier, later in zip(waits[5:], waits[6:], strict=False)]
    assert steps == pytest.approx([0.2] * 14, abs=0.02)


def test_a_booked_delivery_goes_at_its_turn_and_nobody_jumps_the_queue(redis_client):
    endpoint = Endpoint(name="rated", url="https://rated.example.com", rate_per_second=2)
    for i in range(2):
        assert acquire(redis_client, endpoint, f"r{i}", 30) == 0
    first = acquire(redis_client, endpoint, "booked-1", 30)
    second = acquire(redis_client, endpoint, "booked-2", 30)
    assert 0.4 < first <= 0.5 and second == pytest.approx(first + 0.5, abs=0.02)

    # asking again before its turn: the time left, and no second booking
    again = acquire(redis_client, endpoint, "booked-2", 30)
    assert 0 < again <= second
    assert redis_client.exists(booking_key("rated", "booked-2"))

    time.sleep(second + 0.05)
    # a newcomer queues behind the two booked turns (their tokens are spent: it would have
    # gone at once otherwise, a second of refill having passed) ...
    assert acquire(redis_client, endpoint, "newcomer", 30) > 0
    # ... and the booked ones go without a token, once each
    assert acquire(redis_client, endpoint, "booked-1", 30) == 0
    assert acquire(redis_client, endpoint, "booked-2", 30) == 0
    assert not redis_client.exists(booking_key("rated", "booked-2"))


def test_a_turn_missed_by_more_than_the_grace_is_gone(redis_client):
    endpoint = Endpoint(name="rated", url="https://rated.example.com", rate_per_second=1)
    assert acquire(redis_client, endpoint, "first", 30) == 0  # the bucket is empty now
    seconds, micros = redis_client.time()
    late = seconds + micros / 1e6 - BOOKING_GRACE_SECONDS - 5  # as if back long after its turn
    redis_client.set(booking_key("rated", "late"), repr(late))
    # no free pass (a stalled backlog would otherwise go all at once): booked again, at the end
    assert acquire(redis_client, endpoint, "late", 30) == pytest.approx(1.0, abs=0.05)


def test_a_delivery_is_not_booked_beyond_the_horizon(redis_client, monkeypatch):
    monkeypatch.setattr(limits, "BOOK_AHEAD_SECONDS", 2.0)
    endpoint = Endpoint(name="rated", url="https://rated.example.com", rate_per_second=1)
    assert acquire(redis_client, endpoint, "a", 30) == 0
    assert acquire(redis_client, endpoint, "b", 30) == pytest.approx(1.0, abs=0.05)
    assert acquire(redis_client, endpoint, "c", 30) == pytest.approx(2.0, abs=0.05)
    # the next turn is 3 s ahead: not booked, no debt; come back in 2 s
    assert acquire(redis_client, endpoint, "d", 30) == 2.0
    assert acquire(redis_client, endpoint, "e", 30) == 2.0
    assert not redis_client.exists(booking_key("rated", "d"))


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
