"""The gates before a POST (dispatcher.policy.gates): pure, no I/O."""

from __future__ import annotations

import pytest

from dispatcher.policy.gates import (
    HELD_BACK_SECONDS,
    SCHEDULER_SLACK_SECONDS,
    Gate,
    after_limits,
    before_post,
    before_render,
    retry_interval,
    stored_payload,
    unusable_payload,
)
from dispatcher.policy.health import DISABLED_CACHE_SECONDS


def test_an_endpoint_no_longer_configured_fails_without_sending() -> None:
    verdict = before_render("partner-a", configured=False, disabled={})
    assert verdict.gate is Gate.FAIL and verdict.error == "endpoint 'partner-a' is no longer configured"


def test_a_disabled_endpoint_is_held_back_and_checked_after_configuration() -> None:
    assert before_render("partner-a", True, {"partner-a": "410 Gone"}).gate is Gate.DISABLED
    assert before_render("partner-a", False, {"partner-a": "410 Gone"}).gate is Gate.FAIL
    assert before_render("partner-a", True, {"partner-b": None}).gate is Gate.SEND


def test_an_unusable_payload_fails_naming_the_error_type_only() -> None:
    verdict = unusable_payload(ValueError("Expecting value: line 1 column 1 (char 0) -- secret stuff"))
    assert verdict.gate is Gate.FAIL and verdict.error == "stored payload is unusable: ValueError"


@pytest.mark.parametrize(
    ("wait", "retry_in"),
    [(0.2, 1), (1.0, 1), (1.01, 2 + SCHEDULER_SLACK_SECONDS), (4.2, 5 + SCHEDULER_SLACK_SECONDS)],
)
def test_a_limit_defers_at_least_as_long_as_it_asked(wait: float, retry_in: int) -> None:
    verdict = after_limits(wait)
    assert verdict.gate is Gate.DEFER and verdict.retry_in == retry_in
    assert verdict.retry_in >= wait


def test_no_wait_means_send() -> None:
    assert after_limits(0).gate is Gate.SEND


def test_a_delivery_waiting_for_a_thread_is_held_back_after_a_410() -> None:
    assert before_post("partner-a", gone=set()).gate is Gate.SEND
    held = before_post("partner-a", gone={"partner-a"})
    assert held.gate is Gate.HELD_BACK and held.retry_in == HELD_BACK_SECONDS
    # it comes back only after every worker has re-read the disabled endpoints
    assert HELD_BACK_SECONDS > DISABLED_CACHE_SECONDS + SCHEDULER_SLACK_SECONDS


def test_a_retry_is_scheduled_a_second_late_never_early() -> None:
    assert retry_interval(30) == 30 + SCHEDULER_SLACK_SECONDS


def test_an_erased_or_unreadable_payload_fails_saying_why() -> None:
    class Sealed(str):
        problem = "it is encrypted under storage key 0a1b2c3d, which is not in storage_keys"

    assert stored_payload('{"event": "order_changed"}') is None
    erased = stored_payload(None)
    assert erased is not None and erased.gate is Gate.FAIL
    assert erased.error == "stored payload is unreadable: it was erased"
    sealed = stored_payload(Sealed("sealed:v1:0a1b2c3d:..."))
    assert sealed is not None and sealed.error == f"stored payload is unreadable: {Sealed.problem}"
