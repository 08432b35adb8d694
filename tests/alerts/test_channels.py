"""One alert through one channel (dispatcher.alerts.channels), against real servers on loopback:
the webhook POST verified by a Standard Webhooks receiver, redirects not followed, a refused
connection and a timeout in one line without the URL's path; the mail through aiosmtpd with
STARTTLS and a login, a wrong password, an untrusted certificate, no STARTTLS on offer. No
answer ever holds a channel's secret."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dispatcher.alerts import channels, messages
from dispatcher.config.alert_settings import AlertChannel, EmailChannel, WebhookChannel
from dispatcher.store.alerts import Alert
from tests.alerts.servers import (
    ALERT_SECRET,
    SMTP_PASSWORD,
    SMTP_USER,
    AlertReceiver,
    MailServer,
    free_port,
)
from tests.alerts.servers import alert_certs_fixture as alert_certs_fixture
from tests.alerts.servers import alert_receiver_fixture as alert_receiver_fixture
from tests.alerts.servers import mail_server_fixture as mail_server_fixture
from tests.servers import Answer, ScriptedReceiver

NOW = datetime(2026, 12, 7, 20, 1, 2, tzinfo=UTC)
ALERT = Alert(
    3,
    "endpoint.disabled:pharmacy:x",
    "endpoint.disabled",
    "pharmacy",
    NOW,
    None,
    (),
    "endpoint pharmacy disabled: HTTP 410",
    None,
)


def webhook(url: str, secret: str | None = ALERT_SECRET) -> AlertChannel:
    return AlertChannel("oncall", webhook=WebhookChannel(url, secret))


def email(port: int, **overrides) -> AlertChannel:
    settings = {
        "smtp_host": "127.0.0.1",
        "sender": "dispatcher@clinic.example",
        "to": ("oncall@clinic.example",),
        "smtp_port": port,
        "starttls": True,
        "username": SMTP_USER,
        "password": SMTP_PASSWORD,
        **overrides,
    }
    return AlertChannel("mail", email=EmailChannel(**settings))


def test_the_webhook_is_signed_and_the_receiver_verifies_it(alert_receiver: AlertReceiver) -> None:
    answer = channels.send(webhook(alert_receiver.url), ALERT, "test")
    port = alert_receiver.url.split(":")[2].split("/")[0]
    assert answer == channels.Answer(True, f"HTTP 204 No Content from 127.0.0.1:{port}")
    (hook,) = alert_receiver.hooks
    assert hook.verified
    assert hook.headers["webhook-id"] == messages.message_id(ALERT)
    assert hook.headers["content-type"] == "application/json"
    assert hook.body == messages.payload(ALERT)


def test_a_webhook_signed_with_another_secret_is_refused(alert_receiver: AlertReceiver) -> None:
    other = "whsec_" + "T3RoZXJTZWNyZXRPdGhlclNlY3JldE90aGVyU2VjcmV0"
    answer = channels.send(webhook(alert_receiver.url, other), ALERT, "test")
    assert not answer.ok and answer.text.startswith("HTTP 401 Unauthorized")
    assert alert_receiver.hooks[0].verified is False


def test_without_a_secret_the_webhook_carries_no_signature(receiver: ScriptedReceiver) -> None:
    assert channels.send(webhook(receiver.url, None), ALERT, "test").ok
    (got,) = receiver.received
    assert got.headers["webhook-id"] == messages.message_id(ALERT)
    assert "webhook-signature" not in {k.lower() for k in got.headers}


def test_a_redirect_is_not_followed(receiver: ScriptedReceiver) -> None:
    receiver.default = Answer(302, headers={"Location": receiver.url + "/elsewhere"})
    answer = channels.send(webhook(receiver.url), ALERT, "test")
    assert not answer.ok and answer.text.startswith("HTTP 302 Found")
    assert len(receiver.received) == 1


def test_a_refused_connection_is_one_line_without_the_urls_path() -> None:
    port = free_port()
    answer = channels.send(webhook(f"http://127.0.0.1:{port}/services/T0/B0/hook-token"), ALERT, "test")
    assert not answer.ok and f"127.0.0.1:{port}" in answer.text
    assert "hook-token" not in answer.text and "\n" not in answer.text


def test_a_slow_receiver_times_out(receiver: ScriptedReceiver) -> None:
    receiver.default = Answer(200, delay=2)
    answer = channels.send(webhook(receiver.url), ALERT, "test", timeout=0.5)
    assert answer == channels.Answer(False, "no answer within 0.5 s")


def test_a_secret_the_receiver_echoes_is_masked() -> None:
    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500, f"bad secret {ALERT_SECRET}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = channels.send(webhook(f"http://127.0.0.1:{server.server_address[1]}/"), ALERT, "test")
    finally:
        server.shutdown()
        server.server_close()
    assert not answer.ok and answer.text.startswith("HTTP 500 bad secret")
    assert ALERT_SECRET not in answer.text and ALERT_SECRET.removeprefix("whsec_") not in answer.text


def test_the_mail_goes_through_starttls_with_a_login(mail_server: MailServer) -> None:
    answer = channels.send(email(mail_server.port), ALERT, "production")
    assert answer == channels.Answer(
        True, f"127.0.0.1:{mail_server.port} accepted the mail for 1 recipient(s)"
    )
    (mail,) = mail_server.mails
    assert (mail.sender, mail.recipients, mail.logged_in_as) == (
        "dispatcher@clinic.example",
        ["oncall@clinic.example"],
        SMTP_USER,
    )
    assert mail.message["Subject"] == "[dispatcher production] endpoint.disabled: pharmacy"
    assert "endpoint pharmacy disabled: HTTP 410" in mail.text


def test_a_wrong_password_is_a_refused_login_without_the_password(mail_server: MailServer) -> None:
    answer = channels.send(email(mail_server.port, password="wrong-password-1"), ALERT, "test")
    assert not answer.ok and "login refused (535" in answer.text
    assert "wrong-password-1" not in answer.text and mail_server.mails == []


def test_an_untrusted_certificate_is_refused(
    mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")
    answer = channels.send(email(mail_server.port), ALERT, "test")
    assert not answer.ok and answer.text.startswith(f"127.0.0.1:{mail_server.port}: TLS:")
    assert mail_server.mails == []


def test_starttls_asked_of_a_server_without_it_is_refused() -> None:
    plain = MailServer()
    try:
        answer = channels.send(email(plain.port, username=None, password=None), ALERT, "test")
        assert not answer.ok and "STARTTLS" in answer.text
        assert plain.mails == []
        sent = channels.send(email(plain.port, starttls=False, username=None, password=None), ALERT, "test")
        assert sent.ok and len(plain.mails) == 1
    finally:
        plain.close()


def test_a_mail_server_that_is_not_there() -> None:
    port = free_port()
    answer = channels.send(email(port), ALERT, "test")
    assert answer == channels.Answer(False, f"127.0.0.1:{port}: connection refused")
