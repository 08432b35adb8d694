"""``dispatcher alerts list|test|check`` in-process (click's runner) and as a real subprocess,
against the real Redis and SQLite and real channels on loopback: the table and JSON of alerts,
what each channel answered to a test (exit 1 when one failed), one-line errors, and the check."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from click.testing import CliRunner

from dispatcher import store
from dispatcher.cli import cli
from dispatcher.store import leases
from dispatcher.times import utcnow
from tests.alerts.servers import ALERT_SECRET, SMTP_PASSWORD, AlertReceiver, MailServer, alerts_config
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import mail_server_fixture as mail_server_fixture
from tests.cli.helpers import invoke, run_cli


@pytest.fixture
def config(alert_receiver: AlertReceiver, mail_server: MailServer) -> dict:
    return alerts_config(alert_receiver, mail_server)


def fails(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stderr


def test_list_shows_each_alert_and_where_it_went(make_runtime, config) -> None:
    runtime = make_runtime(alerts=config)
    assert invoke("alerts", "list").stdout == "no alerts\n"
    store.disable(runtime.engine, "pharmacy", "HTTP 410 Gone")
    assert invoke("alerts", "test", "oncall").exit_code == 0
    table = invoke("alerts", "list").stdout
    assert "endpoint.disabled" in table and "endpoint pharmacy disabled: HTTP 410 Gone" in table
    assert "oncall: sent" in table and "pharmacy" in table
    documents = json.loads(invoke("alerts", "list", "--json", "--limit", "1").stdout)
    assert [d["kind"] for d in documents] == ["test"]
    assert documents[0]["occurred_at"].endswith("Z") and documents[0]["sends"][0]["status"] == "sent"
    assert set(documents[0]) == {
        "id",
        "kind",
        "occurred_at",
        "endpoint",
        "count",
        "request_ids",
        "detail",
        "resolved_at",
        "sends",
    }


def test_the_test_says_what_each_channel_answered(make_runtime, config, alert_receiver, mail_server) -> None:
    make_runtime(alerts=config)
    result = invoke("alerts", "test")
    assert result.exit_code == 0
    assert result.stdout.startswith("Send a test alert to oncall, mail.\n")
    assert "HTTP 204 No Content" in result.stdout and "accepted the mail for 1 recipient(s)" in result.stdout
    assert ALERT_SECRET not in result.stdout and SMTP_PASSWORD not in result.stdout
    assert alert_receiver.hooks[0].verified and len(mail_server.mails) == 1


def test_a_channel_that_failed_exits_1(make_runtime, config, mail_server) -> None:
    make_runtime(alerts=config)
    mail_server.close()
    result = CliRunner().invoke(cli, ["alerts", "test", "--json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [(c["channel"], c["ok"]) for c in document["channels"]] == [("oncall", True), ("mail", False)]
    assert document["channels"][1]["answer"].endswith("connection refused")


def test_errors_are_one_line(make_runtime, config) -> None:
    make_runtime(alerts=config)
    assert fails("alerts", "test", "pager") == (
        1,
        "error: no alert channel is named 'pager' (channels: oncall, mail)\n",
    )
    make_runtime()
    assert fails("alerts", "check") == (
        1,
        "error: alerts are not configured: set alerts.channels and alerts.rules\n",
    )
    assert fails("alerts", "test") == (1, "error: no alert channels are configured (alerts.channels)\n")


def test_check_raises_none_alive_and_says_what_it_did(make_runtime, config, alert_receiver) -> None:
    runtime = make_runtime(alerts=config)
    leases.renew(runtime.engine, "w1", utcnow() - timedelta(minutes=5), timedelta(seconds=30))
    result = invoke("alerts", "check")
    assert result.stdout.splitlines()[0] == "raised workers.none_alive:after:0"
    assert result.stdout.splitlines()[-1] == "1 raised, 0 resolved, 2 sent, 0 to retry, 0 failed"
    again = json.loads(invoke("alerts", "check", "--json").stdout)
    assert again["raised"] == [] and again["locked"] is True and again["counts"]["sent"] == 0


def test_the_check_runs_as_a_command_of_its_own(write_config, config, alert_receiver, mail_server) -> None:
    path = write_config(alerts=config)
    result = run_cli(path, "alerts", "check", "--json", env={"SSL_CERT_FILE": os.environ["SSL_CERT_FILE"]})
    document = json.loads(result.stdout)
    assert document["counts"]["raised"] == 0  # no lease yet: the silence starts counting now
    assert run_cli(path, "alerts", "list", "--json").stdout.strip() == "[]"
