"""Sending due alerts (dispatcher.alerts.sending) through real channels on loopback: sent on both
channels; a refusal tried again at its due time (30 s, doubling), never before; failed after 10
tries; a channel no longer configured; the time budget; a row another sender took first; and the
test alert, sent once through the channels named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher.alerts import sending
from dispatcher.store import alerts as stored
from dispatcher.times import utcnow
from tests.alerts.servers import AlertReceiver, MailServer, alerts_config
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import mail_server_fixture as mail_server_fixture


@pytest.fixture
def runtime(make_runtime, alert_receiver: AlertReceiver, mail_server: MailServer):
    return make_runtime(alerts=alerts_config(alert_receiver, mail_server))


def raise_to(runtime, *channels: str, at=None) -> int:
    at = at or utcnow()
    alert_id = stored.raise_routed(
        runtime.engine,
        "endpoint.disabled",
        f"endpoint.disabled:pharmacy:{at}",
        channels,
        detail="endpoint pharmacy disabled: HTTP 410",
        endpoint="pharmacy",
        at=at,
    )
    assert alert_id is not None
    return alert_id


def rows(runtime, alert_id: int) -> dict[str, stored.AlertSend]:
    found = stored.alert_with_sends(runtime.engine, alert_id)
    assert found is not None
    return {send.channel: send for send in found[1]}


def send_due(runtime, now):
    return sending.send_due(runtime.engine, runtime.settings.alerts, "test", now)


def test_due_sends_go_through_both_channels_once(runtime, alert_receiver, mail_server) -> None:
    now = utcnow()
    alert_id = raise_to(runtime, "oncall", "mail", at=now)
    report = send_due(runtime, now)
    assert sorted((t.channel, t.status) for t in report.tries) == [("mail", "sent"), ("oncall", "sent")]
    sent = rows(runtime, alert_id)
    assert {c: (s.status, s.attempts, s.sent_at) for c, s in sent.items()} == {
        "mail": ("sent", 1, now),
        "oncall": ("sent", 1, now),
    }
    assert sent["oncall"].answer.startswith("HTTP 204 No Content from 127.0.0.1:")
    assert [h.verified for h in alert_receiver.hooks] == [True] and len(mail_server.mails) == 1
    assert send_due(runtime, now + timedelta(days=1)).tries == []  # never sent twice


def test_a_refusal_is_tried_again_at_its_due_time_never_before(runtime, alert_receiver) -> None:
    alert_receiver.statuses = [503, 503]
    now = utcnow()
    alert_id = raise_to(runtime, "oncall", at=now)
    assert [t.status for t in send_due(runtime, now).tries] == ["pending"]
    row = rows(runtime, alert_id)["oncall"]
    assert (row.next_at, row.answer.split(" from")[0]) == (
        now + timedelta(seconds=30),
        "HTTP 503 Service Unavailable",
    )
    assert send_due(runtime, now + timedelta(seconds=29)).tries == []
    assert [t.status for t in send_due(runtime, now + timedelta(seconds=30)).tries] == ["pending"]
    assert rows(runtime, alert_id)["oncall"].next_at == now + timedelta(seconds=90)
    assert [t.status for t in send_due(runtime, now + timedelta(seconds=90)).tries] == ["sent"]
    assert rows(runtime, alert_id)["oncall"].attempts == 3
    assert len(alert_receiver.hooks) == 3
    assert (
        len({h.headers["webhook-id"] for h in alert_receiver.hooks}) == 1
    )  # one id: the receiver can dedupe


def test_a_send_that_keeps_failing_is_failed_after_ten_tries(runtime, alert_receiver) -> None:
    alert_receiver.statuses = [500] * 20
    now = utcnow()
    alert_id = raise_to(runtime, "oncall", at=now)
    for _ in range(12):
        send_due(runtime, now)
        row = rows(runtime, alert_id)["oncall"]
        now = row.next_at
    assert (row.status, row.attempts) == ("failed", 10)
    assert len(alert_receiver.hooks) == 10


def test_a_channel_gone_from_the_configuration_is_failed(runtime) -> None:
    alert_id = raise_to(runtime, "pager")
    (tried,) = send_due(runtime, utcnow()).tries
    assert (tried.status, tried.answer) == (
        "failed",
        "no alert channel is named 'pager' in the configuration any more",
    )
    assert rows(runtime, alert_id)["pager"].status == "failed"


def test_no_try_starts_once_the_budget_is_spent(runtime, alert_receiver) -> None:
    raise_to(runtime, "oncall")
    ticks = iter([0.0, 100.0])
    report = sending.send_due(
        runtime.engine, runtime.settings.alerts, "test", utcnow(), budget=20, clock=lambda: next(ticks)
    )
    assert report.tries == [] and alert_receiver.hooks == []


def test_a_row_another_sender_took_first_is_not_sent_again(runtime, alert_receiver, monkeypatch) -> None:
    now = utcnow()
    alert_id = raise_to(runtime, "oncall", at=now)
    read = stored.due_sends

    def read_then_lose_the_race(engine, at, limit=100):
        found = read(engine, at, limit)
        for _, send in found:  # the other sender claims between this one's read and its claim
            assert stored.claim_send(engine, send, at, timedelta(seconds=120))
        return found

    monkeypatch.setattr(stored, "due_sends", read_then_lose_the_race)
    assert send_due(runtime, now).tries == []
    assert alert_receiver.hooks == [] and rows(runtime, alert_id)["oncall"].attempts == 1


def test_the_test_alert_is_sent_once_through_each_channel_named(runtime, alert_receiver, mail_server) -> None:
    mail_server.close()
    now = utcnow()
    report = sending.send_test(runtime.engine, runtime.settings.alerts, "test", ["oncall", "mail"], now)
    assert [(t.channel, t.ok, t.status) for t in report.tries] == [
        ("oncall", True, "sent"),
        ("mail", False, "failed"),
    ]
    assert report.tries[1].answer.endswith("connection refused")
    ((alert, sends),) = stored.list_alerts(runtime.engine)
    assert alert.kind == "test" and alert.detail == sending.TEST_DETAIL
    assert {s.channel: s.status for s in sends} == {"oncall": "sent", "mail": "failed"}
    assert send_due(runtime, now + timedelta(days=1)).tries == []  # a test is never tried again
    assert alert_receiver.hooks[0].body["type"] == "test"
