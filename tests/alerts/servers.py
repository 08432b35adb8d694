"""Real servers on loopback for the alerts' tests: an SMTP server (aiosmtpd's Controller, with
STARTTLS under a test CA and a login when asked) that keeps every mail it receives, and an HTTP
receiver that checks each alert webhook's Standard Webhooks signature with the
``standardwebhooks`` library, answering 401 to a bad one."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.partner_servers import PartnerCerts, make_certs

ALERT_SECRET = "whsec_" + "QWxlcnRTZWNyZXRGb3JUZXN0aW5nQWxlcnRzMTIzNDU2"  # 33 bytes, base64
SMTP_USER, SMTP_PASSWORD = "dispatcher", "smtp-password-4711"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    raw: bytes
    logged_in_as: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())


class MailServer:
    """aiosmtpd on 127.0.0.1: STARTTLS (required) with ``certs``, a login (required) with
    ``credentials``; every mail accepted is in :attr:`mails`."""

    def __init__(self, certs: PartnerCerts | None = None, credentials: tuple[str, str] | None = None) -> None:
        self.mails: list[Mail] = []
        self.credentials = credentials
        self.closed = False
        options: dict[str, Any] = {}
        if certs is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(certs.server_cert, certs.server_key)
            options.update(tls_context=context, require_starttls=True)
        if credentials is not None:
            options.update(authenticator=self._authenticate, auth_required=True)
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=data.login.decode() if ok else None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data if isinstance(session.auth_data, str) else None
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content), login))
        return "250 Message accepted for delivery"

    def close(self) -> None:
        """Stops the server (once: closing it again does nothing)."""
        if not self.closed:
            self.closed = True
            self.controller.stop()


@dataclass
class Hook:
    headers: dict[str, str]
    raw: bytes
    verified: bool

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.raw))


class AlertReceiver:
    """An HTTP server on 127.0.0.1 that verifies every POST's Standard Webhooks signature with
    ``secret``: 401 when it does not verify, else the next status of :attr:`statuses` (then 204)."""

    def __init__(self, secret: str = ALERT_SECRET) -> None:
        self.hooks: list[Hook] = []
        self.statuses: list[int] = []
        verifier = Webhook(secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verifier.verify(raw, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                receiver.hooks.append(Hook(headers, raw, verified))
                status = (receiver.statuses.pop(0) if receiver.statuses else 204) if verified else 401
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/oncall-secret-path"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="alert_certs", scope="session")
def alert_certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> PartnerCerts:
    return make_certs(tmp_path_factory.mktemp("alert-certs"))


@pytest.fixture(name="mail_server")
def mail_server_fixture(alert_certs: PartnerCerts, monkeypatch: pytest.MonkeyPatch) -> Iterator[MailServer]:
    """STARTTLS and a login required; the client trusts the test CA (SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(alert_certs.ca))
    server = MailServer(alert_certs, (SMTP_USER, SMTP_PASSWORD))
    yield server
    server.close()


@pytest.fixture(name="alert_receiver")
def alert_receiver_fixture() -> Iterator[AlertReceiver]:
    receiver = AlertReceiver()
    yield receiver
    receiver.close()


def alerts_config(receiver: AlertReceiver, mail: MailServer, **rules: Any) -> dict[str, Any]:
    """The issue's ``alerts:`` section against the test servers (``rules`` replaces its rules)."""
    return {
        "channels": [
            {"name": "oncall", "webhook": {"url": receiver.url, "signing_secret": ALERT_SECRET}},
            {
                "name": "mail",
                "email": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": mail.port,
                    "starttls": True,
                    "username": SMTP_USER,
                    "password": SMTP_PASSWORD,
                    "from": "dispatcher@clinic.example",
                    "to": ["oncall@clinic.example"],
                },
            },
        ],
        "rules": rules.get("rules")
        or [
            {
                "events": ["endpoint.disabled", "endpoint.breaker_opened", "endpoint.recovered"],
                "to": ["oncall", "mail"],
            },
            {"events": ["delivery.failed"], "to": ["mail"], "at_most_every": "15m"},
            {"events": ["queue.backlog"], "to": ["oncall"], "older_than": "10m"},
            {"events": ["workers.none_alive"], "to": ["oncall", "mail"]},
        ],
    }
