"""What a delivery's job returns (``dispatcher/worker/results.py``): a retry RQ schedules, done, or
poison -- checked against RQ's own ``Retry``, which carries it."""

from __future__ import annotations

from rq import Retry

from dispatcher.worker import results


def test_a_retry_runs_once_after_the_given_seconds_and_never_runs_out() -> None:
    retry = results.retry_in(7)
    assert isinstance(retry, Retry)
    assert retry.intervals == [7]
    assert Retry.get_interval(1, retry.intervals) == 7 and Retry.get_interval(500, retry.intervals) == 7
    assert retry.max == results.RETRY_FOREVER  # the delivery table keeps the budget, not RQ


def test_poison_is_one_named_value_distinct_from_done() -> None:
    assert results.POISON is results.Poison.POISON
    assert results.POISON is not None and not isinstance(results.POISON, Retry)
    assert list(results.Poison) == [results.POISON]
