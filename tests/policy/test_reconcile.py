"""Reconcile's verdicts on one unfinished delivery (dispatcher.policy.reconcile): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.policy.reconcile import (
    OVERDUE_GRACE,
    STRANDED_SLACK_SECONDS,
    Action,
    is_abandoned,
    is_alive,
    is_stranded,
    orphan_verdict,
)
from dispatcher.vocabulary import ACTIVE_JOB_STATES, JobState

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TIMEOUT = 180.0


def test_a_claim_is_abandoned_only_when_its_worker_is_not_alive() -> None:
    assert is_abandoned("w1", alive={"w2"}, leased=set())
    assert not is_abandoned("w1", alive={"w1", "w2"}, leased=set())


def test_a_worker_with_a_live_lease_is_alive_whatever_redis_says() -> None:
    """Redis flushed: no liveness key is left, the worker's lease in the database still runs."""
    assert not is_abandoned("w1", alive=set(), leased={"w1"})
    assert is_alive("w1", alive=set(), leased={"w1"})
    assert is_alive("w1", alive={"w1"}, leased=set())


def test_a_claim_is_abandoned_when_both_its_key_and_its_lease_are_gone() -> None:
    assert is_abandoned("w1", alive={"w2"}, leased={"w3"})
    assert not is_alive("w1", alive=set(), leased=set())
    assert is_abandoned(None, alive={"w1"}, leased={"w1"})  # a claim with no worker named


@pytest.mark.parametrize("state", sorted(ACTIVE_JOB_STATES - {JobState.STARTED}))
def test_a_delivery_whose_job_will_run_is_left_alone(state: str) -> None:
    verdict = orphan_verdict(state, worker_alive=False, stranded=False, due=None, now=NOW)
    assert verdict.action is Action.LEAVE


def test_a_job_started_by_a_live_worker_is_left_alone() -> None:
    assert orphan_verdict(JobState.STARTED, True, False, None, NOW).action is Action.LEAVE


@pytest.mark.parametrize(
    "state", [None, JobState.FINISHED, JobState.FAILED, JobState.CANCELED, JobState.STOPPED]
)
def test_no_live_job_means_requeue_now_or_at_its_time(state: str | None) -> None:
    assert orphan_verdict(state, False, False, None, NOW).at is None
    later = NOW + timedelta(minutes=3)
    verdict = orphan_verdict(state, False, False, later, NOW)
    assert verdict.action is Action.REQUEUE and verdict.at == later
    past = orphan_verdict(state, False, False, NOW - timedelta(minutes=3), NOW)
    assert past.action is Action.REQUEUE and past.at is None


def test_a_job_started_by_a_dead_worker_is_requeued() -> None:
    assert orphan_verdict(JobState.STARTED, False, False, None, NOW).action is Action.REQUEUE


def test_a_stranded_job_is_requeued_even_under_a_live_worker() -> None:
    assert orphan_verdict(JobState.STARTED, True, True, None, NOW).action is Action.REQUEUE


def test_a_scheduled_retry_well_past_its_time_is_moved_to_the_queue() -> None:
    late = NOW - OVERDUE_GRACE - timedelta(seconds=1)
    assert orphan_verdict(JobState.SCHEDULED, False, False, late, NOW).action is Action.MOVE_OVERDUE
    on_time = NOW - OVERDUE_GRACE + timedelta(seconds=1)
    assert orphan_verdict(JobState.SCHEDULED, False, False, on_time, NOW).action is Action.LEAVE


def test_stranded_means_started_by_a_live_worker_longer_ago_than_any_job_runs() -> None:
    cutoff = NOW - timedelta(seconds=TIMEOUT + STRANDED_SLACK_SECONDS)
    older, newer = cutoff - timedelta(seconds=1), cutoff + timedelta(seconds=1)
    assert is_stranded(JobState.STARTED, True, older, NOW, TIMEOUT)
    assert not is_stranded(JobState.STARTED, True, newer, NOW, TIMEOUT)
    assert not is_stranded(JobState.STARTED, False, older, NOW, TIMEOUT)  # a dead worker's: requeued anyway
    assert not is_stranded(JobState.QUEUED, True, older, NOW, TIMEOUT)
    assert not is_stranded(JobState.STARTED, True, None, NOW, TIMEOUT)
