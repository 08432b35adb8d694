"""What a page shows of a delivery: in the list, why it is not delivered, in a few words; on its
own page, its wrapper with ``data`` held back, and each attempt with what the partner answered
-- its error (the reason phrase) and its body's first bytes -- held back, until an operator
reveals them. Anyone signed in sees each attempt's outcome, HTTP status and failure kind. And
an endpoint's circuit breaker in words. Pure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..sending.breaker import BreakerView
from ..vocabulary import BreakerState, DeliveryStatus, FailureKind, Reason

FIRST_BYTES = 512
"""How much of an answer the timeline shows, once revealed."""
HIDDEN = "(hidden: event data is PHI; an operator may reveal it, and that is audited)"


def wrapper_text(payload: Any, reveal: bool, mask: Callable[[str], str]) -> str | None:
    """The stored wrapper as indented JSON, ``data`` replaced by a note unless ``reveal``; None
    when the payload is gone (erased). Secrets in it are masked either way."""
    if payload is None:
        return None
    if isinstance(payload, Mapping):
        shown = dict(payload)
        if "data" in shown and not reveal:
            shown["data"] = HIDDEN
        return mask(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
    return mask(str(payload)) if reveal else HIDDEN


def timeline(attempts: list[Mapping[str, Any]], reveal: bool) -> list[dict[str, Any]]:
    """The attempts, oldest first, each with its error and the first bytes of its answer when
    revealed (the document's texts are masked already:
    :func:`dispatcher.ops.documents.delivery_document`)."""
    rows = []
    for attempt in attempts:
        body, error = attempt.get("response_body"), attempt.get("error")
        row = {k: v for k, v in attempt.items() if k not in ("response_body", "error")}
        row["has_body"], row["has_error"] = bool(body), bool(error)
        row["body"] = (
            (body[:FIRST_BYTES] + ("…" if len(body) > FIRST_BYTES else "")) if reveal and body else None
        )
        row["error"] = error if reveal else None
        rows.append(row)
    return rows


def has_phi(document: Mapping[str, Any]) -> bool:
    """Whether revealing would show anything: event data, an answer's body or an attempt's error."""
    return document.get("payload") is not None or any(
        a.get("response_body") or a.get("error") for a in document["attempts"]
    )


REASON_WORDS: dict[str, str] = {
    FailureKind.TIMEOUT: "timeout",
    FailureKind.CONNECTION_ERROR: "connection error",
    FailureKind.DNS_ERROR: "DNS error",
    FailureKind.INVALID_REQUEST: "invalid request",
    FailureKind.DESTINATION_REFUSED: "refused: not allowed",
    FailureKind.TOKEN_ERROR: "no OAuth2 token",
    Reason.ENDPOINT_DISABLED: "endpoint disabled",
}
"""The words of the list's reason column for the stored failure kinds and reasons."""
MAX_REASON = 28
_HTTP = re.compile(r"HTTP \d{3}")


def _words(code: str) -> str:
    """A failure kind or reason as words (``dns_error`` -> ``DNS error``)."""
    if code in REASON_WORDS:
        return REASON_WORDS[code]
    words = code.replace("_", " ")
    return re.sub(r"\b(dns|tls|ssl|http)\b", lambda m: m.group(1).upper(), words)


def _reason_category(reason: str) -> str:
    """A failed delivery's stored reason (``HTTP 503; attempts exhausted (8 of 8)``,
    ``timeout; ...``, ``HTTP 404 is not retried``, ``endpoint_disabled``, ``stored payload is
    unusable: ValueError``...) cut to its category."""
    head = reason.split(";", 1)[0].strip()
    found = _HTTP.match(head)
    if found:
        return found.group(0)
    if head.startswith("stored payload"):
        return "payload unreadable"
    if head.endswith("no longer configured"):
        return "endpoint removed"
    if re.fullmatch(r"[a-z_]+", head) and len(head) <= MAX_REASON:
        return _words(head)
    return head if len(head) <= MAX_REASON else head[: MAX_REASON - 1] + "…"


def reason_column(row: Mapping[str, Any]) -> str:
    """Why a listed delivery is not delivered, in a few words: its failed reason's category,
    else its latest attempt's failure kind, else its last HTTP status when not 2xx; empty when
    delivered, and when there is no failure to name (queued, never attempted)."""
    if row.get("status") == DeliveryStatus.DELIVERED:
        return ""
    if row.get("reason"):
        return _reason_category(str(row["reason"]))
    if row.get("last_failure"):
        return _words(str(row["last_failure"]))
    http_status = row.get("last_http_status")
    if http_status and not 200 <= int(http_status) <= 299:
        return f"HTTP {http_status}"
    return ""


UNKNOWN = "—"
"""What the breaker column says when its state could not be read (Redis out of reach)."""


def breaker_words(view: BreakerView | None, off: bool) -> tuple[str, str]:
    """An endpoint's breaker as the endpoints page says it, and its badge's class: ``off``
    (``breaker: off``), ``closed``, ``open until 08:31:05 UTC``, ``half-open``; :data:`UNKNOWN`
    when it could not be read."""
    if off:
        return "off", "idle"
    if view is None:
        return UNKNOWN, "idle"
    if view.state is BreakerState.OPEN:
        until = f" until {view.open_until:%H:%M:%S} UTC" if view.open_until is not None else ""
        return f"open{until}", "failing"
    if view.state is BreakerState.HALF_OPEN:
        return "half-open", "degraded"
    return "closed", "healthy"
