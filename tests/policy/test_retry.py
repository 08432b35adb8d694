"""The outcome policy (dispatcher.retry): pure, no I/O; ``now`` and ``rand`` are passed in."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dispatcher.config import DeliverySettings, ExponentialBackoff, ListBackoff
from dispatcher.policy import retry
from dispatcher.policy.retry import DeliveryOutcome

NOW = datetime(2026, 3, 14, 12, 0, 0, tzinfo=UTC)
EXPO = ExponentialBackoff(base=30.0, multiplier=2.5, cap=3600.0, jitter=0.1)
LIST = ListBackoff((10, 60, 300))


def settings(backoff=EXPO, max_attempts: int = 8, retry_4xx=(408, 425, 429)) -> DeliverySettings:
    return DeliverySettings(max_attempts=max_attempts, backoff=backoff, retry_4xx=tuple(retry_4xx))


def response(status: int, retry_after: str | None = None) -> DeliveryOutcome:
    return DeliveryOutcome(
        http_status=status,
        failure=None,
        error=None if status < 300 else f"HTTP {status}",
        response_body="",
        duration_ms=12,
        retry_after=retry_after,
    )


def no_response(failure: str | None) -> DeliveryOutcome:
    return DeliveryOutcome(http_status=None, failure=failure, error="boom", response_body=None, duration_ms=5)


def decide(outcome, *, attempt=1, attempt_limit=8, cfg=None, rand=lambda: 0.0, now=NOW):
    return retry.decide(
        outcome,
        attempt=attempt,
        attempt_limit=attempt_limit,
        settings=cfg if cfg is not None else settings(),
        now=now,
        rand=rand,
    )


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_delivered(status):
    decision = decide(response(status))
    assert decision.outcome == retry.DELIVERED == "delivered"
    assert decision.delay_seconds is None
    assert decision.next_attempt_at is None
    assert decision.exhausted is False


def test_2xx_on_the_last_attempt_is_still_delivered():
    decision = decide(response(200), attempt=8, attempt_limit=8)
    assert decision.outcome == retry.DELIVERED
    assert decision.exhausted is False


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_is_retried(status):
    decision = decide(response(status))
    assert decision.outcome == retry.RETRY == "retry_scheduled"
    assert decision.delay_seconds == 30
    assert decision.next_attempt_at == NOW + timedelta(seconds=30)
    assert str(status) in decision.reason


@pytest.mark.parametrize("failure", ["timeout", "connection_error", "dns_error"])
def test_transport_failures_are_retried(failure):
    decision = decide(no_response(failure))
    assert decision.outcome == retry.RETRY
    assert decision.reason == failure
    assert decision.delay_seconds == 30


def test_no_response_without_a_named_failure_is_treated_as_a_connection_error():
    decision = decide(no_response(None))
    assert decision.outcome == retry.RETRY
    assert decision.reason == "connection_error"


def test_invalid_request_fails_without_retry():
    decision = decide(no_response("invalid_request"))
    assert decision.outcome == retry.FAILED == "failed"
    assert decision.reason == "invalid_request"
    assert decision.delay_seconds is None
    assert decision.next_attempt_at is None
    assert decision.exhausted is False


@pytest.mark.parametrize("status", [408, 425, 429])
def test_4xx_in_retry_4xx_is_retried(status):
    decision = decide(response(status))
    assert decision.outcome == retry.RETRY
    assert decision.delay_seconds == 30


def test_retry_4xx_comes_from_the_settings():
    cfg = settings(retry_4xx=(409,))
    assert decide(response(409), cfg=cfg).outcome == retry.RETRY
    assert decide(response(429), cfg=cfg).outcome == retry.FAILED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422, 499])
def test_other_4xx_fail_without_retry(status):
    decision = decide(response(status))
    assert decision.outcome == retry.FAILED
    assert decision.delay_seconds is None
    assert decision.next_attempt_at is None
    assert decision.exhausted is False
    assert str(status) in decision.reason


@pytest.mark.parametrize("status", [300, 301, 302, 304, 307, 308])
def test_3xx_fails_without_retry(status):
    decision = decide(response(status))
    assert decision.outcome == retry.FAILED
    assert decision.delay_seconds is None
    assert decision.exhausted is False


@pytest.mark.parametrize("status", [100, 101, 102, 199])
def test_1xx_fails_without_retry(status):
    decision = decide(response(status))
    assert decision.outcome == retry.FAILED
    assert decision.delay_seconds is None


def test_a_failed_4xx_ignores_retry_after():
    decision = decide(response(400, retry_after="60"))
    assert decision.outcome == retry.FAILED
    assert decision.delay_seconds is None


# --- attempt budget -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcome",
    [response(503), response(429, retry_after="5"), no_response("timeout"), no_response("dns_error")],
)
def test_reaching_the_attempt_limit_fails_as_exhausted(outcome):
    decision = decide(outcome, attempt=8, attempt_limit=8)
    assert decision.outcome == retry.FAILED
    assert decision.exhausted is True
    assert decision.delay_seconds is None
    assert decision.next_attempt_at is None
    assert "exhausted" in decision.reason
    assert "8 of 8" in decision.reason


def test_one_below_the_attempt_limit_is_still_retried():
    decision = decide(response(503), attempt=7, attempt_limit=8)
    assert decision.outcome == retry.RETRY
    assert decision.exhausted is False


def test_past_the_attempt_limit_is_exhausted_too():
    decision = decide(response(503), attempt=9, attempt_limit=8)
    assert decision.outcome == retry.FAILED
    assert decision.exhausted is True


def test_a_granted_budget_restarts_the_backoff_at_retry_one():
    # The first budget of 8 was spent; an operator granted 8 more: the limit is now 16.
    cfg = settings(max_attempts=8)
    assert decide(response(503), attempt=9, attempt_limit=16, cfg=cfg).delay_seconds == 30
    assert decide(response(503), attempt=10, attempt_limit=16, cfg=cfg).delay_seconds == 75
    assert decide(response(503), attempt=11, attempt_limit=16, cfg=cfg).delay_seconds == 188
    assert decide(response(503), attempt=15, attempt_limit=16, cfg=cfg).delay_seconds == 3600
    last = decide(response(503), attempt=16, attempt_limit=16, cfg=cfg)
    assert last.outcome == retry.FAILED
    assert last.exhausted is True


def test_a_granted_budget_restarts_a_list_backoff_too():
    cfg = settings(backoff=LIST, max_attempts=5)
    # First budget: attempts 1..5 (limit 5); granted: attempts 6..10 (limit 10).
    delays = [decide(response(503), attempt=a, attempt_limit=10, cfg=cfg).delay_seconds for a in range(6, 10)]
    assert delays == [10, 60, 300, 300]


# --- backoff schedule -----------------------------------------------------------------------

# min(3600, 30 * 2.5 ** (n - 1)) for n = 1..9, rounded up to whole seconds.
NOMINAL = [30, 75, 188, 469, 1172, 2930, 3600, 3600, 3600]


def test_exponential_schedule_without_jitter():
    cfg = settings(max_attempts=10)
    delays = [decide(response(503), attempt=a, attempt_limit=10, cfg=cfg).delay_seconds for a in range(1, 10)]
    assert delays == NOMINAL


@pytest.mark.parametrize(
    "n, expected", [(1, 30.0), (2, 75.0), (3, 187.5), (4, 468.75), (7, 3600.0), (20, 3600.0)]
)
def test_backoff_seconds_exponential_nominal(n, expected):
    assert retry.backoff_seconds(EXPO, n, rand=lambda: 0.0) == pytest.approx(expected)


def test_exponential_default_window_is_a_few_hours():
    # The issue asks for defaults that make the whole retry window "a few hours".
    total = sum(retry.backoff_seconds(ExponentialBackoff(), n, rand=lambda: 0.0) for n in range(1, 8))
    assert 2 * 3600 <= total <= 4 * 3600


def test_jitter_only_lengthens_the_wait():
    cfg = settings(max_attempts=10)
    for attempt, nominal in enumerate(NOMINAL, start=1):
        delay = decide(
            response(503), attempt=attempt, attempt_limit=10, cfg=cfg, rand=lambda: 0.999
        ).delay_seconds
        exact_nominal = min(3600.0, 30.0 * 2.5 ** (attempt - 1))
        assert nominal <= delay <= math.ceil(exact_nominal * (1 + EXPO.jitter))
    # And it does lengthen: 30 * (1 + 0.1 * 0.999) = 32.997 -> 33.
    assert decide(response(503), attempt=1, rand=lambda: 0.999).delay_seconds == 33


def test_jitter_applies_on_top_of_the_cap():
    raw = retry.backoff_seconds(EXPO, 10, rand=lambda: 0.5)
    assert raw == pytest.approx(3600 * 1.05)


def test_no_jitter_setting_means_exact_schedule():
    flat = ExponentialBackoff(base=10, multiplier=2, cap=100, jitter=0.0)
    assert [retry.backoff_seconds(flat, n, rand=lambda: 0.999) for n in range(1, 6)] == [10, 20, 40, 80, 100]


def test_list_backoff_last_value_repeats():
    cfg = settings(backoff=LIST, max_attempts=10)
    delays = [decide(response(503), attempt=a, attempt_limit=10, cfg=cfg).delay_seconds for a in range(1, 7)]
    assert delays == [10, 60, 300, 300, 300, 300]


def test_list_backoff_ignores_jitter_source():
    cfg = settings(backoff=LIST)
    assert decide(response(503), attempt=2, cfg=cfg, rand=lambda: 0.999).delay_seconds == 60


# --- rounding and timing --------------------------------------------------------------------


def test_delay_is_an_int_rounded_up():
    cfg = settings(backoff=ExponentialBackoff(base=1.2, multiplier=1.0, cap=10.0, jitter=0.0))
    decision = decide(response(503), cfg=cfg)
    assert decision.delay_seconds == 2
    assert type(decision.delay_seconds) is int


def test_jittered_fraction_is_rounded_up():
    cfg = settings(backoff=ExponentialBackoff(base=10.0, multiplier=2.0, cap=100.0, jitter=0.1))
    # 10 * (1 + 0.1 * 0.01) = 10.01 -> 11
    assert decide(response(503), cfg=cfg, rand=lambda: 0.01).delay_seconds == 11


@pytest.mark.parametrize("base", [0.001, 0.2, 0.999])
def test_delay_is_never_below_one_second(base):
    cfg = settings(backoff=ExponentialBackoff(base=base, multiplier=1.0, cap=1.0, jitter=0.0))
    assert decide(response(503), cfg=cfg).delay_seconds == 1


def test_next_attempt_at_is_now_plus_delay():
    now = datetime(2030, 12, 31, 23, 59, 50, 123456, tzinfo=UTC)
    for attempt in range(1, 8):
        decision = decide(response(503), attempt=attempt, now=now, rand=lambda: 0.37)
        assert decision.next_attempt_at == now + timedelta(seconds=decision.delay_seconds)
        assert decision.next_attempt_at.tzinfo is not None


# --- Retry-After ----------------------------------------------------------------------------


def test_retry_after_seconds_lengthens_the_wait_for_a_retry_4xx():
    cfg = settings(backoff=LIST)
    decision = decide(response(429, retry_after="120"), cfg=cfg)
    assert decision.delay_seconds == 120
    assert decision.next_attempt_at == NOW + timedelta(seconds=120)


def test_retry_after_never_shortens_the_wait():
    cfg = settings(backoff=LIST)
    assert decide(response(429, retry_after="3"), attempt=2, cfg=cfg).delay_seconds == 60
    assert decide(response(429, retry_after="0"), attempt=1, cfg=cfg).delay_seconds == 10


def test_retry_after_is_capped_at_the_list_maximum():
    cfg = settings(backoff=LIST)
    assert decide(response(429, retry_after="86400"), cfg=cfg).delay_seconds == 300


def test_retry_after_is_capped_at_the_exponential_cap():
    assert decide(response(429, retry_after="86400")).delay_seconds == 3600
    assert decide(response(408, retry_after="1000")).delay_seconds == 1000


def test_retry_after_http_date():
    cfg = settings(backoff=LIST)
    header = format_datetime(NOW + timedelta(seconds=45), usegmt=True)
    decision = decide(response(429, retry_after=header), cfg=cfg)
    assert decision.delay_seconds == 45
    assert decision.next_attempt_at == NOW + timedelta(seconds=45)


def test_retry_after_http_date_in_the_past_does_not_shorten():
    cfg = settings(backoff=LIST)
    header = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert decide(response(425, retry_after=header), cfg=cfg).delay_seconds == 10


def test_retry_after_http_date_far_ahead_is_capped():
    cfg = settings(backoff=LIST)
    header = format_datetime(NOW + timedelta(days=3), usegmt=True)
    assert decide(response(429, retry_after=header), cfg=cfg).delay_seconds == 300


@pytest.mark.parametrize("header", ["soon", "", "   ", "-5", "5.5", "1e3", "+30", "Thursday", "12 apples"])
def test_garbage_retry_after_is_ignored(header):
    cfg = settings(backoff=LIST)
    decision = decide(response(429, retry_after=header), cfg=cfg)
    assert decision.outcome == retry.RETRY
    assert decision.delay_seconds == 10


def test_retry_after_with_surrounding_whitespace():
    cfg = settings(backoff=LIST)
    assert decide(response(429, retry_after="  90 "), cfg=cfg).delay_seconds == 90


@pytest.mark.parametrize("status", [500, 503])
def test_retry_after_on_a_5xx_is_ignored(status):
    # The current policy honours Retry-After only for statuses in retry_4xx.
    cfg = settings(backoff=LIST)
    assert decide(response(status, retry_after="120"), cfg=cfg).delay_seconds == 10
    assert decide(response(status, retry_after="5"), attempt=2, cfg=cfg).delay_seconds == 60


def test_retry_after_seconds_helper():
    assert retry.retry_after_seconds(None, NOW) is None
    assert retry.retry_after_seconds("", NOW) is None
    assert retry.retry_after_seconds("42", NOW) == 42.0
    assert retry.retry_after_seconds(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90.0
    assert retry.retry_after_seconds(format_datetime(NOW - timedelta(seconds=90), usegmt=True), NOW) == 0.0
    assert retry.retry_after_seconds("not a date", NOW) is None


def test_retry_after_never_shortens_a_jittered_wait_at_the_cap():
    without = decide(response(429), attempt=7, rand=lambda: 0.5).delay_seconds
    with_header = decide(response(429, retry_after="4000"), attempt=7, rand=lambda: 0.5).delay_seconds
    assert without == 3780
    assert with_header >= without


def test_retry_after_superscript_digit_is_ignored():
    cfg = settings(backoff=LIST)
    assert decide(response(429, retry_after="\u00b2"), cfg=cfg).delay_seconds == 10
