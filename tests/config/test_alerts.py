"""The ``alerts:`` section and the ``breaker:`` form (``dispatcher/config/alerts.py``): what they
become, and each mistake as one error naming the setting."""

from __future__ import annotations

import pytest

from dispatcher.config import BreakerSettings, parse_settings
from dispatcher.config.alert_settings import AlertRule, EmailChannel, WebhookChannel
from dispatcher.errors import ConfigError

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ALERTS = {
    "channels": [
        {"name": "oncall", "webhook": {"url": "https://hooks.example/oncall", "signing_secret": SECRET}},
        {
            "name": "mail",
            "email": {
                "smtp_host": "mail.clinic.internal",
                "username": "dispatcher",
                "password": "smtp-pass-123",
                "from": "dispatcher@clinic.example",
                "to": ["oncall@clinic.example"],
            },
        },
    ],
    "rules": [
        {"events": ["endpoint.disabled", "endpoint.breaker_opened"], "to": ["oncall", "mail"]},
        {"events": ["delivery.failed"], "to": ["mail"], "at_most_every": "15m"},
        {"events": ["queue.backlog"], "to": ["oncall"], "older_than": "10m"},
    ],
}


def test_the_issue_s_example_becomes_channels_and_rules() -> None:
    alerts = parse_settings({"alerts": ALERTS}, env={}).alerts
    oncall, mail = alerts.channels
    assert oncall.webhook == WebhookChannel("https://hooks.example/oncall", SECRET)
    assert mail.email == EmailChannel(
        "mail.clinic.internal", "dispatcher@clinic.example", ("oncall@clinic.example",), 587, True,
        "dispatcher", "smtp-pass-123",
    )  # fmt: skip
    assert alerts.rules[1] == AlertRule(("delivery.failed",), ("mail",), 900, None)
    assert alerts.channels_for("endpoint.disabled") == ["oncall", "mail"]
    assert alerts.channels_for("workers.none_alive") == []
    assert alerts.rules_for("queue.backlog")[0].backlog_seconds == 600


def test_secrets_of_the_channels_are_masked_everywhere() -> None:
    settings = parse_settings({"alerts": ALERTS}, env={})
    assert {SECRET, "smtp-pass-123"} <= set(settings.secrets())


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        ({"rules": [{"events": ["endpoint.down"], "to": []}]}, "alerts.rules[0].events[0]: unknown alert"),
        ({"rules": [{"events": ["queue.backlog"], "to": ["pager"]}]}, "no channel is named 'pager'"),
        ({"channels": [{"name": "x"}]}, "alerts.channels[0]: needs exactly one of webhook or email"),
        (
            {"channels": [ALERTS["channels"][0], ALERTS["channels"][0]]},
            "alerts.channels[1].name: duplicate channel name 'oncall'",
        ),
        (
            {"channels": [{"name": "m", "email": {"smtp_host": "h", "from": "nobody", "to": ["a@b.c"]}}]},
            "alerts.channels[0].email.from: 'nobody' is not an email address",
        ),
    ],
)
def test_a_mistake_names_the_setting(alerts: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_settings({"alerts": alerts}, env={})


def test_a_breaker_is_on_by_default_tuned_or_off_per_endpoint() -> None:
    endpoints = [
        {"name": "off", "url": "https://a.example/", "breaker": False},
        {"name": "words", "url": "https://a.example/", "breaker": "off"},
        {"name": "tuned", "url": "https://a.example/", "breaker": {"open_for": "1m", "max_open_for": "5m"}},
        {"name": "plain", "url": "https://a.example/"},
    ]
    settings = parse_settings({"endpoints": endpoints}, env={})
    off, words, tuned, plain = (settings.delivery_for(e).breaker for e in settings.endpoints)
    assert off is None and words is None
    assert tuned == BreakerSettings(open_seconds=60, max_open_seconds=300)
    assert plain == BreakerSettings()


def test_a_breaker_that_cannot_work_is_refused() -> None:
    with pytest.raises(ConfigError, match="delivery.breaker.max_open_for: must be at least"):
        parse_settings({"delivery": {"breaker": {"open_for": "5m", "max_open_for": "1m"}}}, env={})
    with pytest.raises(ConfigError, match="delivery.breaker: expected off"):
        parse_settings({"delivery": {"breaker": "on"}}, env={})
