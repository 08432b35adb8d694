"""When a failure disables an endpoint (dispatcher.policy.health): pure, no I/O."""

from __future__ import annotations

from dispatcher.config import DisableAfter
from dispatcher.policy.health import counts_failures, disable_reason, is_gone

RULE = DisableAfter(failed_deliveries=3, window_seconds=3600)


def test_410_disables_at_once_whatever_the_rule() -> None:
    assert disable_reason(410, None) == "410 Gone"
    assert disable_reason(410, RULE, 0) == "410 Gone"
    assert not counts_failures(410, RULE)  # no query needed


def test_a_410_configured_as_retryable_is_not_gone() -> None:
    assert is_gone(410) and is_gone(410, (408, 429))
    assert not is_gone(410, (410,)) and not is_gone(404) and not is_gone(None)


def test_without_a_rule_no_other_failure_disables() -> None:
    assert not counts_failures(500, None)
    assert disable_reason(500, None) is None and disable_reason(None, None, 99) is None


def test_the_rule_disables_at_its_count_of_failures_without_success() -> None:
    assert counts_failures(400, RULE) and counts_failures(None, RULE)
    assert disable_reason(400, RULE, 2) is None
    assert disable_reason(400, RULE, 3) == "3 failed deliveries and no success in 3600 s"
    assert disable_reason(None, RULE, 7) == "7 failed deliveries and no success in 3600 s"
    assert disable_reason(400, RULE, 0) is None  # a success in the window counts as 0
