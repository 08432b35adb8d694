"""Alerts for operators (dispatcher.ops.alerts) with the real Redis, SQLite and PostgreSQL and real
channels on loopback: the test door's plan reads only and refuses an unknown channel; carrying
it out sends through each channel and writes one audit row (channels, counts, no secret); the
alerts listed newest first with what each channel answered; the check raises workers.none_alive."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import store
from dispatcher.errors import DispatcherError
from dispatcher.ops import audit
from dispatcher.ops.alerts import AlertsTest, alert_documents, check
from dispatcher.ops.door import Actor
from dispatcher.store import alerts as stored
from dispatcher.store import leases
from dispatcher.times import utcnow
from dispatcher.vocabulary import AuditAction
from tests.alerts.servers import ALERT_SECRET, SMTP_PASSWORD, AlertReceiver, MailServer, alerts_config
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import mail_server_fixture as mail_server_fixture


@pytest.fixture
def runtime(make_runtime, database_url: str, alert_receiver: AlertReceiver, mail_server: MailServer):
    return make_runtime(database_url=database_url, alerts=alerts_config(alert_receiver, mail_server))


def test_the_plan_names_the_channels_and_writes_nothing(runtime) -> None:
    plan = AlertsTest().plan(runtime)
    assert (plan.action, plan.count, plan.selection) == (
        AuditAction.ALERTS_TEST,
        None,
        {"channels": ["oncall", "mail"]},
    )
    assert plan.description == "Send a test alert to oncall, mail."
    assert AlertsTest("mail").plan(runtime).selection == {"channels": ["mail"]}
    assert stored.list_alerts(runtime.engine) == [] and audit.entries(runtime.engine) == []


def test_an_unknown_channel_or_none_configured_is_one_error(runtime, make_runtime) -> None:
    with pytest.raises(
        DispatcherError, match=r"no alert channel is named 'pager' \(channels: oncall, mail\)"
    ):
        AlertsTest("pager").plan(runtime)
    with pytest.raises(DispatcherError, match=r"no alert channels are configured \(alerts.channels\)"):
        AlertsTest().plan(make_runtime())


def test_carrying_it_out_sends_to_each_channel_and_audits_once(runtime, alert_receiver, mail_server) -> None:
    done = AlertsTest().carry_out(runtime, Actor.console("olivia"))
    assert [(s.channel, s.ok) for s in done.tries] == [("oncall", True), ("mail", True)] and not done.failed
    assert alert_receiver.hooks[0].verified and alert_receiver.hooks[0].body["type"] == "test"
    assert mail_server.mails[0].message["Subject"] == "[dispatcher test] test"
    (entry,) = audit.entries(runtime.engine)
    assert (entry.actor, entry.action, entry.counts) == ("olivia", "alerts test", {"sent": 2, "failed": 0})
    assert entry.selection == {"channels": ["oncall", "mail"], "via": "console"}
    assert done.as_dict()["channels"][1]["answer"].endswith("accepted the mail for 1 recipient(s)")


def test_a_channel_that_fails_is_said_and_counted(runtime, mail_server) -> None:
    mail_server.close()
    done = AlertsTest("mail").carry_out(runtime, Actor.cli())
    assert done.failed and done.counts() == {"sent": 0, "failed": 1}
    (entry,) = audit.entries(runtime.engine)
    assert SMTP_PASSWORD not in str(entry) and ALERT_SECRET not in str(entry)


def test_the_documents_list_alerts_newest_first_with_their_sends(runtime) -> None:
    store.disable(runtime.engine, "pharmacy", "HTTP 410 Gone")
    AlertsTest("oncall").carry_out(runtime, Actor.cli())
    documents = alert_documents(runtime, limit=10)
    assert [d["kind"] for d in documents] == ["test", "endpoint.disabled"]
    assert documents[0]["sends"][0]["channel"] == "oncall" and documents[0]["sends"][0]["status"] == "sent"
    assert documents[0]["sends"][0]["next_at"] is None
    assert documents[1]["sends"] == [] and documents[1]["endpoint"] == "pharmacy"
    assert documents[1]["detail"] == "endpoint pharmacy disabled: HTTP 410 Gone"
    assert len(alert_documents(runtime, limit=1)) == 1


def test_the_check_raises_none_alive_once(runtime, alert_receiver) -> None:
    now = utcnow()
    leases.renew(runtime.engine, "w1", now - timedelta(minutes=5), timedelta(seconds=30))
    first, second = check(runtime, now), check(runtime, now + timedelta(seconds=30))
    assert first.raised == ["workers.none_alive:after:0"] and second.raised == []
    assert [h.body["type"] for h in alert_receiver.hooks] == ["workers.none_alive"]
