"""The alerts' values (``dispatcher/config/alert_settings.py``): the routing of a kind to its
channels, the backlog's default age, and the secrets a masker needs."""

from __future__ import annotations

from dispatcher.config.alert_settings import (
    AlertChannel,
    AlertRule,
    AlertSettings,
    EmailChannel,
    WebhookChannel,
)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_kind_goes_to_each_of_its_channels_once_in_the_rules_order() -> None:
    alerts = AlertSettings(
        rules=(
            AlertRule(("endpoint.disabled", "delivery.failed"), ("mail", "oncall")),
            AlertRule(("delivery.failed",), ("oncall", "pager")),
        )
    )
    assert alerts.channels_for("delivery.failed") == ["mail", "oncall", "pager"]
    assert alerts.channels_for("endpoint.disabled") == ["mail", "oncall"]
    assert alerts.channels_for("queue.backlog") == []


def test_a_backlog_rule_without_older_than_waits_ten_minutes() -> None:
    assert AlertRule(("queue.backlog",), ("x",)).backlog_seconds == 600
    assert AlertRule(("queue.backlog",), ("x",), older_than_seconds=60).backlog_seconds == 60


def test_the_secrets_are_the_signing_secret_both_ways_and_the_smtp_password() -> None:
    alerts = AlertSettings(
        channels=(
            AlertChannel("hook", webhook=WebhookChannel("https://h.example/", SECRET)),
            AlertChannel("mail", email=EmailChannel("smtp", "a@b.c", ("c@d.e",), password="pw-123")),
            AlertChannel("bare", webhook=WebhookChannel("https://h.example/")),
        )
    )
    assert alerts.secrets() == [SECRET, SECRET.removeprefix("whsec_"), "pw-123"]
    assert alerts.channel("mail") is not None and alerts.channel("mail").kind == "email"  # type: ignore[union-attr]
    assert alerts.channel("nope") is None
