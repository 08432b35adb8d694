"""Deriving alerts (dispatcher.alerts.evaluate) from a real database, on SQLite and PostgreSQL:
delivery.failed grouped per endpoint at most every at_most_every, queue.backlog and
workers.none_alive as episodes raised once and resolved, each routed to its rules' channels."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher import store
from dispatcher.alerts.evaluate import evaluate
from dispatcher.config.alert_settings import AlertChannel, AlertRule, AlertSettings, WebhookChannel
from dispatcher.store import alerts as stored
from dispatcher.store import leases
from tests.store.test_alerts import add_delivery

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CHANNELS = tuple(
    AlertChannel(n, webhook=WebhookChannel(f"https://hooks.example/{n}")) for n in ("oncall", "mail")
)
ISSUE_RULES = AlertSettings(
    CHANNELS,
    (
        AlertRule(("endpoint.disabled", "endpoint.breaker_opened", "endpoint.recovered"), ("oncall", "mail")),
        AlertRule(("delivery.failed",), ("mail",), at_most_every_seconds=900),
        AlertRule(("queue.backlog",), ("oncall",), older_than_seconds=600),
        AlertRule(("workers.none_alive",), ("oncall", "mail")),
    ),
)


@pytest.fixture
def engine(database_url: str) -> Iterator:
    engine = store.create_store_engine(database_url)
    yield engine
    engine.dispose()


def listed(engine) -> list[tuple]:
    """(occurrence, count, request ids, channels, resolved) of every alert, oldest first."""
    rows = reversed(stored.list_alerts(engine, 1000))
    return [
        (a.occurrence, a.count, a.request_ids, [s.channel for s in sends], a.resolved_at) for a, sends in rows
    ]


def passes(engine, settings: AlertSettings, *moments: datetime, none_alive: bool = False) -> list[list[str]]:
    return [evaluate(engine, settings, m, include_none_alive=none_alive).raised for m in moments]


def test_failed_deliveries_are_one_alert_per_endpoint_with_count_and_ids(engine) -> None:
    for i in range(3):
        add_delivery(engine, f"ph-{i}", "failed", NOW - timedelta(minutes=3 - i), reason="HTTP 500")
    add_delivery(engine, "lab-0", "failed", NOW - timedelta(minutes=1), endpoint="lab", reason="HTTP 404")
    add_delivery(engine, "held", "failed", NOW - timedelta(minutes=1), reason="endpoint_disabled")
    add_delivery(engine, "ok", "delivered", NOW - timedelta(minutes=1))
    raised = evaluate(engine, ISSUE_RULES, NOW, include_none_alive=False).raised
    assert raised == ["delivery.failed:lab:after:0", "delivery.failed:pharmacy:after:0"]
    assert listed(engine) == [
        ("delivery.failed:lab:after:0", 1, ("lab-0",), ["mail"], None),
        ("delivery.failed:pharmacy:after:0", 3, ("ph-0", "ph-1", "ph-2"), ["mail"], None),
    ]
    alert = stored.newest_alert(engine, "delivery.failed", endpoint="pharmacy")
    assert alert is not None and alert.occurred_at == NOW - timedelta(seconds=5)
    assert alert.detail.startswith("3 deliveries to pharmacy ran out of attempts since ")


def test_failures_within_at_most_every_wait_for_the_next_alert(engine) -> None:
    add_delivery(engine, "first", "failed", NOW - timedelta(minutes=1))
    assert passes(engine, ISSUE_RULES, NOW) == [["delivery.failed:pharmacy:after:0"]]
    first_id = stored.newest_alert(engine, "delivery.failed").id
    add_delivery(engine, "second", "failed", NOW + timedelta(minutes=1))
    add_delivery(engine, "third", "failed", NOW + timedelta(minutes=10))
    assert passes(engine, ISSUE_RULES, NOW + timedelta(seconds=15), NOW + timedelta(minutes=14)) == [[], []]
    assert passes(engine, ISSUE_RULES, NOW + timedelta(minutes=15)) == [
        [f"delivery.failed:pharmacy:after:{first_id}"]
    ]
    newest = stored.newest_alert(engine, "delivery.failed")
    assert (newest.count, newest.request_ids) == (2, ("second", "third"))
    assert passes(engine, ISSUE_RULES, NOW + timedelta(hours=1)) == [[]]  # nothing new: no alert


def test_a_failure_written_late_and_stamped_early_is_in_the_next_alert_not_lost(engine) -> None:
    """A worker's spool writes a failure after the database came back, stamped with the time of
    its attempt (before the previous alert): the alerts count rows by id, so it is not lost."""
    every_pass = AlertSettings(CHANNELS, (AlertRule(("delivery.failed",), ("mail",)),))
    add_delivery(engine, "first", "failed", NOW - timedelta(seconds=30))
    assert passes(engine, every_pass, NOW) == [["delivery.failed:pharmacy:after:0"]]
    first = stored.newest_alert(engine, "delivery.failed")
    add_delivery(engine, "spooled", "failed", NOW - timedelta(minutes=10))  # written now, stamped before
    (raised,) = passes(engine, every_pass, NOW + timedelta(seconds=15))
    assert raised == [f"delivery.failed:pharmacy:after:{first.id}"]
    assert stored.newest_alert(engine, "delivery.failed").request_ids == ("spooled",)
    assert passes(engine, every_pass, NOW + timedelta(seconds=30)) == [[]]  # nothing new: nothing raised


def test_evaluating_twice_at_once_raises_each_occurrence_once(engine) -> None:
    add_delivery(engine, "f", "failed", NOW - timedelta(minutes=1))
    add_delivery(engine, "q", "queued", NOW - timedelta(hours=1))
    first = evaluate(engine, ISSUE_RULES, NOW, include_none_alive=True).raised
    second = evaluate(engine, ISSUE_RULES, NOW, include_none_alive=True).raised
    assert sorted(first) == [
        "delivery.failed:pharmacy:after:0",
        "queue.backlog:600s:after:0",
        "workers.none_alive:after:0",
    ]
    assert second == []


def test_no_rule_naming_a_kind_means_it_is_not_evaluated(engine) -> None:
    only_disabled = AlertSettings(CHANNELS, (ISSUE_RULES.rules[0],))
    add_delivery(engine, "f", "failed", NOW - timedelta(minutes=1))
    add_delivery(engine, "q", "queued", NOW - timedelta(hours=1))
    assert passes(engine, only_disabled, NOW) == [[]]
    assert listed(engine) == []


def test_a_backlog_is_one_episode_raised_when_it_starts_and_resolved_when_it_clears(engine) -> None:
    add_delivery(engine, "q", "queued", NOW - timedelta(minutes=9))
    assert passes(engine, ISSUE_RULES, NOW) == [[]]
    assert passes(
        engine, ISSUE_RULES, NOW + timedelta(minutes=1), NOW + timedelta(minutes=2), none_alive=False
    ) == [
        ["queue.backlog:600s:after:0"],
        [],
    ]
    (alert,) = [a for a, _ in stored.list_alerts(engine)]
    assert alert.detail == "the oldest waiting delivery has waited 10m 0s (alert at 10m 0s)"
    with engine.begin() as conn:
        conn.execute(store.DELIVERIES.update().values(status="delivered"))
    changes = evaluate(engine, ISSUE_RULES, NOW + timedelta(minutes=3), include_none_alive=False)
    assert changes.resolved == ["queue.backlog:600s:after:0"]
    assert listed(engine) == [
        ("queue.backlog:600s:after:0", None, (), ["oncall"], NOW + timedelta(minutes=3))
    ]
    add_delivery(engine, "q2", "queued", NOW)
    assert passes(engine, ISSUE_RULES, NOW + timedelta(minutes=20)) == [
        [f"queue.backlog:600s:after:{alert.id}"]
    ]


def test_each_backlog_threshold_is_its_own_episode_to_its_own_channels(engine) -> None:
    two = AlertSettings(
        CHANNELS,
        (
            AlertRule(("queue.backlog",), ("oncall",), older_than_seconds=600),
            AlertRule(("queue.backlog",), ("mail",), older_than_seconds=3600),
        ),
    )
    add_delivery(engine, "q", "queued", NOW - timedelta(minutes=30))
    assert passes(engine, two, NOW) == [["queue.backlog:600s:after:0"]]
    assert passes(engine, two, NOW + timedelta(minutes=30)) == [["queue.backlog:3600s:after:0"]]
    assert [(o, c) for o, _, _, c, _ in listed(engine)] == [
        ("queue.backlog:600s:after:0", ["oncall"]),
        ("queue.backlog:3600s:after:0", ["mail"]),
    ]


def test_none_alive_is_raised_by_the_check_only_and_resolved_by_a_live_worker(engine) -> None:
    ttl = timedelta(seconds=30)
    leases.renew(engine, "w1", NOW - timedelta(seconds=59), ttl)
    assert passes(engine, ISSUE_RULES, NOW, none_alive=True) == [[]]
    later = NOW + timedelta(seconds=1)
    assert passes(engine, ISSUE_RULES, later) == [[]]  # a worker's pass never raises it
    assert passes(engine, ISSUE_RULES, later, later, none_alive=True) == [["workers.none_alive:after:0"], []]
    (alert,) = [a for a, _ in stored.list_alerts(engine)]
    assert alert.detail == "no worker heartbeat since 2026-12-07T11:59:01Z (1m 0s ago)"
    leases.renew(engine, "w2", NOW + timedelta(minutes=5), ttl)
    changes = evaluate(engine, ISSUE_RULES, NOW + timedelta(minutes=5), include_none_alive=False)
    assert changes.resolved == ["workers.none_alive:after:0"]
    assert listed(engine) == [
        ("workers.none_alive:after:0", None, (), ["mail", "oncall"], NOW + timedelta(minutes=5))
    ]


def test_with_no_lease_at_all_none_alive_waits_a_minute_from_when_that_was_first_seen(engine) -> None:
    seen = NOW - timedelta(seconds=30)
    assert evaluate(engine, ISSUE_RULES, NOW, include_none_alive=True, leaseless_since=seen).raised == []
    raised = evaluate(
        engine, ISSUE_RULES, NOW + timedelta(seconds=30), include_none_alive=True, leaseless_since=seen
    )
    assert raised.raised == ["workers.none_alive:after:0"]
    assert stored.newest_alert(engine, "workers.none_alive").detail == (
        "no worker holds a lease: none was started, or every one stopped"
    )
