"""Routing the alerts raised elsewhere (dispatcher.alerts.routing), on SQLite and PostgreSQL: an
endpoint disabled and enabled through the store gets one send row per channel its rules name,
once; an old alert, or a kind no rule names, gets none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from dispatcher import store
from dispatcher.alerts.routing import ROUTE_WITHIN_SECONDS, route_new
from dispatcher.config.alert_settings import AlertRule, AlertSettings
from dispatcher.store import alerts as stored
from dispatcher.times import utcnow
from tests.alerts.test_evaluate import CHANNELS, ISSUE_RULES


@pytest.fixture
def engine(database_url: str) -> Iterator:
    engine = store.create_store_engine(database_url)
    yield engine
    engine.dispose()


def routes(engine) -> list[tuple[str, list[str]]]:
    return [(a.kind, [s.channel for s in sends]) for a, sends in reversed(stored.list_alerts(engine))]


def test_a_disabled_then_enabled_endpoint_goes_to_the_rules_channels_once(engine) -> None:
    assert store.disable(engine, "pharmacy", "HTTP 410 Gone")
    assert store.enable(engine, "pharmacy")
    now = utcnow()
    assert route_new(engine, ISSUE_RULES, now) == 4
    assert route_new(engine, ISSUE_RULES, now) == 0
    assert routes(engine) == [
        ("endpoint.disabled", ["mail", "oncall"]),
        ("endpoint.recovered", ["mail", "oncall"]),
    ]
    assert len(stored.due_sends(engine, now)) == 4


def test_only_the_kinds_a_rule_names_and_only_recent_alerts_are_routed(engine) -> None:
    now = utcnow()
    stored.raise_alert(
        engine, "endpoint.disabled", "old", detail="old", at=now - timedelta(seconds=ROUTE_WITHIN_SECONDS + 1)
    )
    stored.raise_alert(engine, "endpoint.breaker_opened", "opened", detail="opened", endpoint="lab", at=now)
    stored.raise_alert(engine, "endpoint.recovered", "recovered", detail="recovered", endpoint="lab", at=now)
    only_opened = AlertSettings(CHANNELS, (AlertRule(("endpoint.breaker_opened",), ("oncall",)),))
    assert route_new(engine, only_opened, now) == 1
    assert routes(engine) == [
        ("endpoint.disabled", []),
        ("endpoint.breaker_opened", ["oncall"]),
        ("endpoint.recovered", []),
    ]
    assert route_new(engine, AlertSettings(CHANNELS, ()), now) == 0


def test_derived_kinds_are_left_to_the_evaluation(engine) -> None:
    now = utcnow()
    stored.raise_alert(engine, "delivery.failed", "f", detail="f", endpoint="lab", at=now)
    assert route_new(engine, ISSUE_RULES, now) == 0
