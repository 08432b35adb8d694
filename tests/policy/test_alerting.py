"""The alerts' pure decisions (dispatcher.policy.alerting): the send backoff and when it gives
up, delivery.failed's grouping windows, episodes, backlog thresholds, workers.none_alive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatcher.config.alert_settings import AlertChannel, AlertRule, AlertSettings, WebhookChannel
from dispatcher.policy import alerting
from dispatcher.policy.alerting import Step, Window

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CHANNELS = tuple(
    AlertChannel(n, webhook=WebhookChannel(f"https://hooks.example/{n}")) for n in ("a", "b", "c")
)


def settings(*rules: AlertRule) -> AlertSettings:
    return AlertSettings(CHANNELS, rules)


def test_a_failed_send_waits_30_s_doubling_to_an_hour_and_gives_up_after_10_tries() -> None:
    assert [alerting.retry_in(n) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert alerting.retry_in(10_000) == 3600
    assert alerting.next_try(1, NOW) == NOW + timedelta(seconds=30)
    assert alerting.next_try(9, NOW) == NOW + timedelta(hours=1)
    assert alerting.next_try(10, NOW) is None


def test_failed_every_is_the_smallest_at_most_every_of_the_rules_naming_it() -> None:
    assert alerting.failed_every(settings()) == 0
    assert (
        alerting.failed_every(settings(AlertRule(("delivery.failed",), ("a",), at_most_every_seconds=900)))
        == 900
    )
    both = settings(
        AlertRule(("delivery.failed",), ("a",), at_most_every_seconds=900),
        AlertRule(("delivery.failed", "queue.backlog"), ("b",), at_most_every_seconds=300),
        AlertRule(("queue.backlog",), ("c",), at_most_every_seconds=60),
    )
    assert alerting.failed_every(both) == 300
    assert alerting.failed_every(settings(AlertRule(("delivery.failed",), ("a",)))) == 0


def test_a_first_failed_alert_looks_back_an_hour_up_to_a_few_seconds_ago() -> None:
    until = NOW - timedelta(seconds=alerting.SETTLE_SECONDS)
    assert alerting.failed_window(None, 900, NOW) == Window(until - timedelta(hours=1), until)
    assert alerting.failed_window(None, 7200, NOW) == Window(until - timedelta(hours=2), until)


def test_the_next_failed_alert_starts_at_the_previous_cut_once_at_most_every_passed() -> None:
    previous = NOW - timedelta(minutes=10)
    assert alerting.failed_window(previous, 900, NOW) is None
    later = NOW + timedelta(minutes=5, seconds=alerting.SETTLE_SECONDS)
    assert alerting.failed_window(previous, 900, later) == Window(previous, previous + timedelta(minutes=15))
    assert alerting.failed_window(previous, 0, NOW) == Window(previous, NOW - timedelta(seconds=5))
    long_ago = NOW - timedelta(days=2)  # a long quiet: an hour back at most
    window = alerting.failed_window(long_ago, 900, NOW)
    assert window is not None and window.since == NOW - timedelta(seconds=5) - timedelta(hours=1)


def test_with_no_rate_limit_a_cut_is_never_covered_twice() -> None:
    cut = NOW - timedelta(seconds=alerting.SETTLE_SECONDS)
    assert alerting.failed_window(cut, 0, NOW) is None


def test_an_episode_is_raised_when_it_starts_and_resolved_when_it_ends() -> None:
    assert alerting.episode(is_open=False, holds=True) is Step.RAISE
    assert alerting.episode(is_open=True, holds=True) is Step.KEEP
    assert alerting.episode(is_open=True, holds=False) is Step.RESOLVE
    assert alerting.episode(is_open=False, holds=False) is Step.KEEP


def test_backlog_thresholds_join_rules_with_the_same_threshold() -> None:
    rules = settings(
        AlertRule(("queue.backlog",), ("a",), older_than_seconds=3600),
        AlertRule(("queue.backlog",), ("b", "a")),  # 10 minutes by default
        AlertRule(("queue.backlog",), ("c",), older_than_seconds=600),
        AlertRule(("delivery.failed",), ("c",)),
    )
    assert alerting.backlog_thresholds(rules) == {600: ("b", "a", "c"), 3600: ("a",)}
    assert alerting.backlog_thresholds(settings()) == {}


def test_backlogged_once_the_oldest_waited_the_threshold() -> None:
    assert alerting.backlogged(None, 600, NOW) is False
    assert alerting.backlogged(NOW - timedelta(seconds=599), 600, NOW) is False
    assert alerting.backlogged(NOW - timedelta(seconds=600), 600, NOW) is True


def test_none_alive_after_a_minute_without_a_heartbeat() -> None:
    assert alerting.none_alive(NOW - timedelta(seconds=59), None, NOW) is False
    assert alerting.none_alive(NOW - timedelta(seconds=60), None, NOW) is True
    # the newest lease decides, whatever was seen without one before
    assert alerting.none_alive(NOW - timedelta(seconds=5), NOW - timedelta(hours=1), NOW) is False


def test_with_no_lease_at_all_the_silence_counts_from_when_it_was_first_seen() -> None:
    assert alerting.none_alive(None, NOW - timedelta(seconds=30), NOW) is False
    assert alerting.none_alive(None, NOW - timedelta(seconds=60), NOW) is True
    assert alerting.none_alive(None, None, NOW) is True  # not known since when: at once


def test_age_text() -> None:
    assert [alerting.age_text(s) for s in (0, 45, 750, 7500, -3)] == ["0s", "45s", "12m 30s", "2h 5m", "0s"]
