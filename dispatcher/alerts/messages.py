"""What an alert says, built from its stored row alone (names, counts, request ids and a detail
in words: no PHI, since the row holds none): the webhook's JSON ``{type, occurred_at, endpoint?,
count?, request_ids?, detail}`` and the mail's short plain text. Pure, no I/O.

Every alert has a stable id (:func:`message_id`, from its occurrence): the webhook's
``webhook-id`` and the mail's ``Message-ID``, the same on every try, so a receiver that got a
try twice (the sender died before it recorded the first) can tell.
"""

from __future__ import annotations

import hashlib
import json
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from ..config.alert_settings import EmailChannel
from ..store.alerts import Alert
from ..times import format_utc

SUBJECT_CHARS = 120
"""A subject longer than this is cut (its detail is in the body)."""


def message_id(alert: Alert) -> str:
    """``alert_`` and 32 hex characters of the occurrence's SHA-256: the same for every try."""
    return "alert_" + hashlib.sha256(alert.occurrence.encode()).hexdigest()[:32]


def payload(alert: Alert) -> dict[str, Any]:
    """The webhook's JSON document; ``endpoint``, ``count`` and ``request_ids`` only when the
    alert has them."""
    document: dict[str, Any] = {"type": alert.kind, "occurred_at": format_utc(alert.occurred_at)}
    if alert.endpoint is not None:
        document["endpoint"] = alert.endpoint
    if alert.count is not None:
        document["count"] = alert.count
    if alert.request_ids:
        document["request_ids"] = list(alert.request_ids)
    document["detail"] = alert.detail
    return document


def body(alert: Alert) -> bytes:
    """The webhook's body: the payload as compact UTF-8 JSON (what is signed is what is sent)."""
    return json.dumps(payload(alert), separators=(",", ":"), ensure_ascii=False).encode()


def subject(alert: Alert, environment: str) -> str:
    about = f": {alert.endpoint}" if alert.endpoint else ""
    text = f"[dispatcher {environment}] {alert.kind}{about}"
    if alert.count is not None:
        text += f" ({alert.count})"
    return text if len(text) <= SUBJECT_CHARS else text[: SUBJECT_CHARS - 3] + "..."


def text(alert: Alert, environment: str) -> str:
    """The mail's body: one fact a line, then where to look."""
    lines = [f"{alert.kind} ({environment})", "", alert.detail, ""]
    if alert.endpoint is not None:
        lines.append(f"endpoint:    {alert.endpoint}")
    lines.append(f"occurred at: {format_utc(alert.occurred_at)}")
    if alert.count is not None:
        lines.append(f"count:       {alert.count}")
    if alert.request_ids:
        more = (
            f" (first {len(alert.request_ids)})"
            if alert.count and alert.count > len(alert.request_ids)
            else ""
        )
        lines.append(f"request ids{more}:")
        lines.extend(f"  {request_id}" for request_id in alert.request_ids)
    lines += ["", f"alert id: {message_id(alert)}", "Every alert: dispatcher alerts list", ""]
    return "\n".join(lines)


def mail(alert: Alert, channel: EmailChannel, environment: str) -> EmailMessage:
    """The alert as a plain-text mail to the channel's recipients."""
    message = EmailMessage()
    message["Subject"] = subject(alert, environment)
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message["Date"] = format_datetime(alert.occurred_at)
    domain = channel.sender.rpartition("@")[2] or "dispatcher"
    message["Message-ID"] = f"<{message_id(alert)}@{domain}>"
    message.set_content(text(alert, environment))
    return message
