"""When a delivery waiting behind its key's head looks again (dispatcher.policy.ordering): pure,
with the clock as an argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.policy.ordering import PARK_SECONDS, wake_in

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_behind_a_queued_or_in_flight_head_it_parks() -> None:
    assert wake_in(None, NOW) == PARK_SECONDS == 30


@pytest.mark.parametrize(
    ("due_in", "expected"),
    [
        (timedelta(seconds=10), 11),  # a second past the head's retry
        (timedelta(seconds=9, milliseconds=1), 11),  # whole seconds, rounded up
        (timedelta(minutes=5), 301),  # later than PARK_SECONDS: still just after the retry
        (timedelta(0), 1),
        (timedelta(seconds=-30), 1),  # the head's retry is overdue: never sooner than a second
    ],
)
def test_behind_a_head_waiting_for_its_retry_it_looks_just_after(due_in: timedelta, expected: int) -> None:
    assert wake_in(NOW + due_in, NOW) == expected
