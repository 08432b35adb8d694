"""The circuit breaker's decisions (dispatcher.policy.breaker) and its gates (dispatcher.policy.gates):
pure, no server, clocks as arguments."""

from __future__ import annotations

import pytest

from dispatcher.config import BreakerSettings
from dispatcher.policy import breaker
from dispatcher.policy.breaker import (
    PROBE_SLACK_SECONDS,
    PROBE_WAIT_SECONDS,
    Admission,
    AfterProbe,
    Sample,
    Stored,
    admit,
    after_probe,
    opens,
    reopen_seconds,
    sample,
    state_at,
)
from dispatcher.policy.gates import (
    PAUSED_RECHECK_SECONDS,
    SCHEDULER_SLACK_SECONDS,
    Gate,
    after_breaker,
    not_paused,
)
from dispatcher.vocabulary import BreakerState, FailureKind

DEFAULT = BreakerSettings()
NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("http_status", "failure", "expected"),
    [
        (200, None, Sample.ANSWERED),
        (302, None, Sample.ANSWERED),
        (400, None, Sample.ANSWERED),  # the partner is up and said no
        (404, None, Sample.ANSWERED),
        (429, None, Sample.ANSWERED),
        (500, None, Sample.FAILED),
        (503, None, Sample.FAILED),
        (599, None, Sample.FAILED),
        (None, FailureKind.TIMEOUT, Sample.FAILED),
        (None, FailureKind.CONNECTION_ERROR, Sample.FAILED),
        (None, FailureKind.DNS_ERROR, Sample.FAILED),
        (None, FailureKind.TOKEN_ERROR, Sample.NOTHING),  # never reached the partner
        (None, FailureKind.DESTINATION_REFUSED, Sample.NOTHING),
        (None, FailureKind.INVALID_REQUEST, Sample.NOTHING),
    ],
)
def test_what_an_attempt_counts_as(http_status, failure, expected) -> None:
    assert sample(http_status, failure) is expected


def test_it_opens_at_70_percent_of_at_least_10_attempts() -> None:
    assert opens(10, 7, DEFAULT)  # exactly 70 %
    assert not opens(10, 6, DEFAULT)
    assert not opens(9, 9, DEFAULT)  # too few attempts, whatever failed
    assert opens(30, 21, DEFAULT)
    assert not opens(0, 0, BreakerSettings(min_attempts=0))
    assert opens(3, 3, BreakerSettings(failure_ratio=1.0, min_attempts=3))
    assert not opens(3, 2, BreakerSettings(failure_ratio=1.0, min_attempts=3))


def test_the_state_follows_the_clock() -> None:
    assert state_at(breaker.CLOSED, NOW) is BreakerState.CLOSED
    opened = Stored(open=True, generation=1, since=NOW, opened_at=NOW, open_until=NOW + 30, open_seconds=30)
    assert state_at(opened, NOW + 29.9) is BreakerState.OPEN
    assert state_at(opened, NOW + 30) is BreakerState.HALF_OPEN


def test_a_closed_breaker_lets_every_delivery_go() -> None:
    assert admit(breaker.CLOSED, "r1", NOW).admission is Admission.GO


def test_an_open_breaker_makes_a_delivery_wait_until_the_probe_time() -> None:
    opened = Stored(open=True, generation=1, since=NOW, opened_at=NOW, open_until=NOW + 30, open_seconds=30)
    decision = admit(opened, "r1", NOW + 10)
    assert decision.admission is Admission.WAIT and decision.wait_seconds == pytest.approx(20)


def test_half_open_one_probe_and_the_others_wait_a_little() -> None:
    half = Stored(open=True, generation=1, since=NOW, opened_at=NOW, open_until=NOW + 30, open_seconds=30)
    assert admit(half, "r1", NOW + 30).admission is Admission.PROBE  # nobody probes yet
    probing = Stored(**{**half.__dict__, "probe": "r1", "probe_until": NOW + 95})
    assert admit(probing, "r1", NOW + 31).admission is Admission.PROBE  # its own job back again
    other = admit(probing, "r2", NOW + 31)
    assert other.admission is Admission.WAIT and other.wait_seconds == PROBE_WAIT_SECONDS
    nearly_over = admit(probing, "r2", NOW + 93)
    assert nearly_over.admission is Admission.WAIT and nearly_over.wait_seconds == pytest.approx(2)
    # a probe whose turn ran out (its worker was killed): another delivery probes
    assert admit(probing, "r2", NOW + 95).admission is Admission.PROBE


def test_a_probes_turn_lasts_its_deadline_and_some_slack() -> None:
    assert breaker.probe_seconds(30, 5) == 35 + PROBE_SLACK_SECONDS


def test_a_probe_answered_closes_a_failed_one_reopens_one_that_never_went_gives_the_turn_back() -> None:
    assert after_probe(Sample.ANSWERED) is AfterProbe.CLOSE
    assert after_probe(Sample.FAILED) is AfterProbe.REOPEN
    assert after_probe(Sample.NOTHING) is AfterProbe.RELEASE


def test_each_failed_probe_doubles_the_open_time_up_to_the_maximum() -> None:
    times, current = [], 30
    for _ in range(6):
        current = reopen_seconds(current, DEFAULT)
        times.append(current)
    assert times == [60, 120, 240, 480, 600, 600]
    assert reopen_seconds(None, DEFAULT) == 60  # unknown: from open_for
    assert reopen_seconds(2, BreakerSettings(open_seconds=2, max_open_seconds=3)) == 3


def test_an_open_breaker_gives_the_delivery_back_until_just_after_the_probe_time() -> None:
    assert after_breaker(0).gate is Gate.SEND
    verdict = after_breaker(20.2)
    assert verdict.gate is Gate.BREAKER_OPEN and verdict.retry_in == 21 + SCHEDULER_SLACK_SECONDS
    assert after_breaker(0.3).retry_in == 1


def test_a_paused_endpoint_holds_its_deliveries_back_for_a_while() -> None:
    assert not_paused("pharmacy", frozenset()).gate is Gate.SEND
    assert not_paused("pharmacy", frozenset({"lab"})).gate is Gate.SEND
    verdict = not_paused("pharmacy", frozenset({"pharmacy"}))
    assert verdict.gate is Gate.PAUSED and verdict.retry_in == PAUSED_RECHECK_SECONDS
