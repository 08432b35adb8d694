"""What an alert says (dispatcher.alerts.messages): the webhook's JSON with only the fields the
alert has, its stable id, and the mail's subject, headers and plain text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from dispatcher.alerts import messages
from dispatcher.config.alert_settings import EmailChannel
from dispatcher.store.alerts import Alert

NOW = datetime(2026, 12, 7, 20, 1, 2, 345678, tzinfo=UTC)
FAILED = Alert(
    7,
    "delivery.failed:pharmacy:after:0",
    "delivery.failed",
    "pharmacy",
    NOW,
    23,
    ("r1", "r2"),
    "23 deliveries to pharmacy ran out of attempts",
    None,
)
NONE_ALIVE = Alert(
    8,
    "workers.none_alive:after:0",
    "workers.none_alive",
    None,
    NOW,
    None,
    (),
    "no worker heartbeat since 2026-12-07T20:00:00Z (1m 2s ago)",
    None,
)
CHANNEL = EmailChannel(
    "mail.clinic.internal", "dispatcher@clinic.example", ("a@clinic.example", "b@clinic.example")
)


def test_the_payload_has_the_issues_fields_and_only_those_the_alert_has() -> None:
    assert messages.payload(FAILED) == {
        "type": "delivery.failed",
        "occurred_at": "2026-12-07T20:01:02Z",
        "endpoint": "pharmacy",
        "count": 23,
        "request_ids": ["r1", "r2"],
        "detail": "23 deliveries to pharmacy ran out of attempts",
    }
    assert list(messages.payload(NONE_ALIVE)) == ["type", "occurred_at", "detail"]
    assert json.loads(messages.body(FAILED)) == messages.payload(FAILED)
    assert b'", "' not in messages.body(FAILED)  # compact: what is signed is what is sent


def test_the_id_is_stable_per_occurrence() -> None:
    same = Alert(99, FAILED.occurrence, "delivery.failed", "pharmacy", NOW, 1, (), "other words", None)
    assert messages.message_id(FAILED) == messages.message_id(same)
    assert messages.message_id(FAILED) != messages.message_id(NONE_ALIVE)
    assert messages.message_id(FAILED).startswith("alert_") and len(messages.message_id(FAILED)) == 38


def test_the_mail_is_short_plain_text_to_every_recipient() -> None:
    mail = messages.mail(FAILED, CHANNEL, "production")
    assert mail["Subject"] == "[dispatcher production] delivery.failed: pharmacy (23)"
    assert (mail["From"], mail["To"]) == ("dispatcher@clinic.example", "a@clinic.example, b@clinic.example")
    assert mail["Message-ID"] == f"<{messages.message_id(FAILED)}@clinic.example>"
    assert mail.get_content_type() == "text/plain"
    text = mail.get_content()
    assert "23 deliveries to pharmacy ran out of attempts" in text
    assert "request ids (first 2):\n  r1\n  r2" in text
    assert "occurred at: 2026-12-07T20:01:02Z" in text and "dispatcher alerts list" in text
    assert len(text.splitlines()) < 20


def test_an_alert_without_endpoint_or_count_says_less() -> None:
    text = messages.text(NONE_ALIVE, "staging")
    assert "endpoint:" not in text and "count:" not in text and "request ids" not in text
    assert messages.subject(NONE_ALIVE, "staging") == "[dispatcher staging] workers.none_alive"


def test_a_long_subject_is_cut() -> None:
    long = Alert(1, "x", "endpoint.disabled", "e" * 200, NOW, None, (), "d", None)
    assert len(messages.subject(long, "production")) == messages.SUBJECT_CHARS
