"""Alerts to the people on call, end to end: a real `python worker.py` process with the issue's
``alerts:`` configuration, a real SMTP server (aiosmtpd, STARTTLS under a test CA and a login)
and a real HTTP receiver that verifies every alert's Standard Webhooks signature.

An endpoint disabled with ``dispatcher endpoints disable`` reaches both channels exactly once;
deliveries that run out of attempts (max_attempts 1, the partner answers 500, ``breaker: off``)
are one grouped ``delivery.failed`` mail with their count and request ids; with the worker
gone, ``dispatcher alerts check`` run twice sends ``workers.none_alive`` once. A marker placed
in the event data (and in the partner's answers) is in no mail and no webhook."""

from __future__ import annotations

import signal
from datetime import timedelta

from dispatcher import dispatch
from dispatcher.contract import catalogue as events
from dispatcher.store import leases
from dispatcher.times import utcnow
from tests.alerts.servers import AlertReceiver, MailServer, alerts_config
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import mail_server_fixture as mail_server_fixture
from tests.cli.helpers import run_cli
from tests.conftest import wait_for
from tests.servers import Answer

MARKER = "PHI-MARKER-7f3a91"
MESSAGE = {
    **events.CATALOGUE["message_created"].example(),
    "message": f"dose for {MARKER}",
    "patient_id": MARKER,
}


def endpoints(receiver) -> list[dict]:
    return [
        {"name": "pharmacy", "url": receiver.url, "key": "k-pharmacy-1", "max_attempts": 1, "breaker": False},
        {"name": "lab", "url": receiver.url + "/lab", "key": "k-lab-1"},
    ]


def subjects(mail_server: MailServer) -> list[str]:
    return [m.message["Subject"] for m in mail_server.mails]


def hook_types(alert_receiver: AlertReceiver) -> list[str]:
    return [h.body["type"] for h in alert_receiver.hooks]


def test_alerts_reach_the_people_on_call_once_and_carry_no_phi(
    make_runtime, write_config, start_worker, receiver, alert_receiver, mail_server, alert_certs
) -> None:
    receiver.default = Answer(500, body=f'{{"error":"no patient {MARKER}"}}'.encode(), delay=0.5)
    config = alerts_config(alert_receiver, mail_server)
    runtime = make_runtime(endpoints=endpoints(receiver), alerts=config)
    path = write_config(endpoints=endpoints(receiver), alerts=config)
    env = {"SSL_CERT_FILE": str(alert_certs.ca)}
    worker = start_worker(path, extra_env=env)
    wait_for(lambda: leases.live_workers(runtime.engine, [worker.name], utcnow()), 30, message="the worker")

    run_cli(path, "endpoints", "disable", "lab", "--reason", "partner maintenance", env=env)
    disabled = "[dispatcher test] endpoint.disabled: lab"
    wait_for(lambda: disabled in subjects(mail_server), 40, message="endpoint.disabled by mail")
    wait_for(
        lambda: "endpoint.disabled" in hook_types(alert_receiver), 10, message="endpoint.disabled by webhook"
    )

    request_ids = [dispatch("message_created", MESSAGE, endpoints=["pharmacy"])[0] for _ in range(3)]
    failed = "[dispatcher test] delivery.failed: pharmacy (3)"
    wait_for(lambda: failed in subjects(mail_server), 60, message="one grouped delivery.failed mail")
    (mail,) = [m for m in mail_server.mails if m.message["Subject"] == failed]
    assert "3 deliveries to pharmacy ran out of attempts" in mail.text
    assert sorted(line.strip() for line in mail.text.splitlines() if line.strip() in request_ids) == sorted(
        request_ids
    )
    assert mail.logged_in_as == "dispatcher"
    # the endpoint.disabled alert went out before, at an earlier pass, and only once
    assert (
        subjects(mail_server).count(disabled) == 1
        and hook_types(alert_receiver).count("endpoint.disabled") == 1
    )
    assert "delivery.failed" not in hook_types(alert_receiver)  # its rule names the mail alone

    worker.stop(signal.SIGTERM)  # a clean stop releases the lease; the last heartbeat is set back
    leases.renew(runtime.engine, worker.name, utcnow() - timedelta(minutes=2), timedelta(seconds=30))
    first = run_cli(path, "alerts", "check", env=env)
    second = run_cli(path, "alerts", "check", env=env)
    assert first.stdout.startswith("raised workers.none_alive:after:0\n")
    assert second.stdout == "0 raised, 0 resolved, 0 sent, 0 to retry, 0 failed\n"
    assert subjects(mail_server).count("[dispatcher test] workers.none_alive") == 1
    assert hook_types(alert_receiver).count("workers.none_alive") == 1

    listed = run_cli(path, "alerts", "list", "--json", env=env).stdout
    assert all(h.verified for h in alert_receiver.hooks)
    received = [m.raw.decode(errors="replace") for m in mail_server.mails] + [
        h.raw.decode() for h in alert_receiver.hooks
    ]
    for text in [*received, listed, first.stdout, second.stdout]:
        assert MARKER not in text
