"""Sending one alert through one channel, and what the channel answered in one line.

The webhook channel POSTs the alert's JSON with ``requests`` (no redirect followed, a connect
timeout of :data:`CONNECT_TIMEOUT` and a read timeout of :data:`TIMEOUT` seconds), with the
Standard Webhooks headers -- ``webhook-id`` (the alert's stable id), ``webhook-timestamp`` and,
with a ``signing_secret``, ``webhook-signature``. The email channel sends a plain-text mail with
``smtplib``: STARTTLS (the system's trusted certificates, host name checked) when ``starttls`` is
set, a login when ``username`` is. A 2xx answer, or a mail the server accepted for at least one
recipient, is sent; anything else is an :class:`Answer` that is not ``ok``, to try again later.

An answer is one line a person can act on; it never holds the channel's secrets (masked, and
the webhook's URL is named by ``host:port`` only: a hook's path often is its secret).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from dataclasses import dataclass

import requests

from ..config.alert_settings import AlertChannel, EmailChannel, WebhookChannel
from ..contract.signing import decode_secret, signature_headers
from ..redaction import Masker
from ..sending.explain import endpoint_of, explain
from ..store.alerts import Alert
from . import messages

TIMEOUT = 10.0
"""Seconds a channel may take to answer (the webhook's read, each SMTP command)."""
CONNECT_TIMEOUT = 5.0
ANSWER_CHARS = 200
"""An answer is cut to this many characters."""
USER_AGENT = "Baremeds-Webhook-Dispatcher-Alerts"


@dataclass(frozen=True)
class Answer:
    """What a channel answered: ``ok`` when it took the alert, and its words in one line."""

    ok: bool
    text: str


def send(channel: AlertChannel, alert: Alert, environment: str, timeout: float = TIMEOUT) -> Answer:
    """Sends ``alert`` through ``channel``; never raises for what the channel does."""
    masker = Masker(channel.secrets())
    try:
        if channel.webhook is not None:
            answer = post(channel.webhook, alert, timeout)
        elif channel.email is not None:
            answer = mail(channel.email, alert, environment, timeout)
        else:  # pragma: no cover - the config refuses a channel without either
            answer = Answer(False, "the channel has neither webhook nor email")
    except (UnicodeError, ValueError) as exc:  # e.g. a login smtplib cannot encode: a refusal, retried
        answer = Answer(False, f"could not be sent: {type(exc).__name__}")
    return Answer(answer.ok, _line(masker.mask(answer.text)))


def _line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= ANSWER_CHARS else flat[: ANSWER_CHARS - 3] + "..."


def headers(channel: WebhookChannel, alert: Alert, body: bytes, timestamp: int) -> dict[str, str]:
    """The POST's headers: JSON, and the Standard Webhooks three (two without a secret)."""
    keys = [decode_secret(channel.signing_secret)] if channel.signing_secret else []
    signed = signature_headers(messages.message_id(alert), timestamp, body, keys)
    if not keys:
        del signed["webhook-signature"]
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT, **signed}


def post(channel: WebhookChannel, alert: Alert, timeout: float = TIMEOUT) -> Answer:
    """POSTs the alert once; ``HTTP <status> <reason>`` or why no answer came."""
    body = messages.body(alert)
    sent = headers(channel, alert, body, int(time.time()))
    try:
        response = requests.post(
            channel.url,
            data=body,
            headers=sent,
            timeout=(min(CONNECT_TIMEOUT, timeout), timeout),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Answer(False, explain(exc, channel.url, timeout=timeout, connect_timeout=CONNECT_TIMEOUT))
    with response:
        where = endpoint_of(channel.url)[1]
        words = f"HTTP {response.status_code} {response.reason or ''}".strip()
        return Answer(200 <= response.status_code < 300, f"{words} from {where}")


def mail(channel: EmailChannel, alert: Alert, environment: str, timeout: float = TIMEOUT) -> Answer:
    """Mails the alert once; which recipients the server accepted, or why it did not."""
    message = messages.mail(alert, channel, environment)
    where = f"{channel.smtp_host}:{channel.smtp_port}"
    try:
        with smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=timeout) as smtp:
            if channel.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if channel.username is not None:
                smtp.login(channel.username, channel.password or "")
            refused = smtp.send_message(message)
    except smtplib.SMTPException as exc:
        return Answer(False, f"{where}: {_smtp_words(exc)}")
    except (OSError, ssl.SSLError) as exc:
        return Answer(False, f"{where}: {_os_words(exc, timeout)}")
    taken = len(channel.to) - len(refused)
    refused_text = f", refused {len(refused)}" if refused else ""
    return Answer(taken > 0, f"{where} accepted the mail for {taken} recipient(s){refused_text}")


def _smtp_words(exc: smtplib.SMTPException) -> str:
    """An SMTP refusal: its code and the server's words (never the password: masked after)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"every recipient refused ({len(exc.recipients)})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"not supported by the server: {exc}"
    code = getattr(exc, "smtp_code", None)
    error = getattr(exc, "smtp_error", b"")
    words = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused ({code} {words})".strip()
    if code is not None:
        return f"{type(exc).__name__} {code} {words}".strip()
    return f"{type(exc).__name__}: {exc}"


def _os_words(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message or 'certificate not trusted'}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
