"""The audit page's rows in words: each audit row as one sentence -- who, through what, did
what to how many deliveries of which selection ("olivia (console) retried 12 failed deliveries
to pharmacy, event order_changed, since 2026-12-01") -- and what the sentence leaves out as
``label: value`` pairs, so nothing the row holds is hidden.

A row holds no PHI (:mod:`dispatcher.store.audit`); the keyed hashes that name a patient, an
encounter or a business id are shortened, as they mean nothing to a person. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..store.audit import AuditEntry
from ..vocabulary import AuditAction, ExportRows

MAX_LISTED = 3
"""Most items of a list (request ids) a value shows before "and N more"."""
KEY_CHARS = 12
"""How much of a keyed hash a value shows."""


@dataclass(frozen=True)
class AuditLine:
    """One audit row as the page shows it."""

    id: int
    at: datetime
    action: str
    sentence: str
    details: tuple[tuple[str, str], ...]


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 delivery``, ``12 deliveries``, ``1,204 values``."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def moment(value: Any) -> str | None:
    """A stored time (JSON keeps it as text) as a person reads it: ``2026-12-01`` at midnight,
    else ``2026-12-01 08:30 UTC``; None when ``value`` is no time."""
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d", value):
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    found = found.astimezone(UTC) if found.tzinfo else found
    if (found.hour, found.minute, found.second) == (0, 0, 0):
        return found.strftime("%Y-%m-%d")
    return found.strftime("%Y-%m-%d %H:%M" + (":%S" if found.second else "")) + " UTC"


def shown(key: str, value: Any) -> str:
    """A selection's or a count's value as text: a time in words, a keyed hash shortened, a list
    to its first few, a number with separators."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        items = [shown(key, item) for item in value]
        more = len(items) - MAX_LISTED
        return ", ".join(items[:MAX_LISTED]) + (f" and {more:,} more" if more > 0 else "")
    if value is None:
        return "none"
    text = moment(value) or str(value)
    if key.endswith(("_key", "_keys")) and len(text) > KEY_CHARS:
        return text[:KEY_CHARS] + "…"
    return text


Phrase = Callable[[dict[str, Any], dict[str, Any]], str]
"""What an action did, from its row's selection and counts; it takes out the keys it says."""


def _take(row: dict[str, Any], key: str, default: Any = None) -> Any:
    return row.pop(key, default)


def _retry(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    requeued = int(_take(counts, "requeued", 0))
    ids = _take(sel, "request_ids")
    if ids is not None:
        asked = requeued + int(_take(counts, "left_alone", 0))
        if len(ids) == 1 and asked <= 1:
            done = "" if requeued else " (left alone, not re-queued)"
            return f"retried delivery {ids[0]}{done}"
        return f"retried {requeued:,} of {plural(asked, 'delivery', 'deliveries')} chosen by request id"
    matched = int(_take(counts, "matched", requeued))
    _take(sel, "statuses"), _take(sel, "with_payload")
    of = f" (of {matched:,} matched)" if matched != requeued else ""
    return f"retried {plural(requeued, 'failed delivery', 'failed deliveries')}{of}"


def _replay(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    replayed = int(_take(counts, "replayed", 0))
    matched = int(_take(counts, "matched", replayed))
    of = f" (of {matched:,} matched)" if matched != replayed else ""
    return f"replayed {plural(replayed, 'delivery', 'deliveries')}{of}"


def _prune(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    deleted = int(_take(counts, "deleted", 0))
    _take(counts, "matched")
    statuses = _take(sel, "statuses") or ()
    which = f" ({', '.join(statuses)})" if statuses else ""
    return f"deleted {plural(deleted, 'delivery', 'deliveries')}{which}"


def _kept(days: Any, what: str) -> str:
    return f"{what} kept {plural(int(days), 'day')}" if days is not None else f"{what} kept for ever"


def _retention(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    erased, deleted = int(_take(counts, "erased", 0)), int(_take(counts, "deleted", 0))
    payloads, rows = _take(sel, "payload_days"), _take(sel, "rows_days")
    kept = f"{_kept(payloads, 'payloads')}, {_kept(rows, 'rows')}"
    return (
        f"applied retention ({kept}): erased the payloads of "
        f"{plural(erased, 'delivery', 'deliveries')} and deleted {plural(deleted, 'delivery', 'deliveries')}"
    )


def _erase(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    ids = _take(sel, "request_ids")
    whose = " of one patient" if "patient_key" in sel else ""
    whose += ", one encounter" if "encounter_key" in sel else ""
    whose += f" chosen by request id ({shown('request_ids', ids)})" if ids else ""
    found, erased = int(_take(counts, "matched", 0)), int(_take(counts, "erased", 0))
    if _take(sel, "dry_run"):
        return f"looked up the deliveries{whose} to erase, changing nothing: {found:,} found"
    return f"erased the event data and answers of {plural(erased, 'delivery', 'deliveries')}{whose}"


def _export(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    kind = "delivery" if _take(sel, "rows") == ExportRows.DELIVERIES else "attempt"
    fmt = _take(sel, "format")
    rows = int(_take(counts, "rows", 0))
    return f"exported {plural(rows, kind + ' row')}" + (f" as {fmt}" if fmt else "")


def _endpoint(verb: str) -> Phrase:
    def phrase(sel: dict[str, Any], counts: dict[str, Any]) -> str:
        name, reason = _take(sel, "endpoint"), _take(sel, "reason")
        already = "" if _take(counts, "changed", 1) else f" (it was {verb} already)"
        text = f"{verb} endpoint {name}{already}"
        if reason:
            text += f": {reason}"
        requeued = _take(counts, "requeued")
        if _take(sel, "resend") and requeued is not None:
            text += f", re-queueing {plural(int(requeued), 'held-back delivery', 'held-back deliveries')}"
        return text

    return phrase


def _storage(verb: str) -> Phrase:
    def phrase(sel: dict[str, Any], counts: dict[str, Any]) -> str:
        sealed = int(_take(counts, "sealed", 0))
        return f"{verb} {plural(sealed, 'stored value')} under storage key {_take(sel, 'key_id')}"

    return phrase


def _reveal(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    return f"revealed the event data and answers of delivery {_take(sel, 'request_id')}"


SPANS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60))


def span(seconds: int) -> str:
    """A grace in words: ``1 day``, ``36 hours``, ``90 seconds``."""
    for unit, size in SPANS:
        if seconds >= size and seconds % size == 0:
            return plural(seconds // size, unit)
    return plural(seconds, "second")


def _names(names: Any) -> str:
    return shown("settings", list(names or ())) or "nothing"


def _added(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    _take(counts, "added")
    settings = _take(sel, "settings") or ()
    return f"added endpoint {_take(sel, 'endpoint')}" + (f" with {_names(settings)}" if settings else "")


def _edited(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    _take(counts, "changed")
    return f"changed {_names(_take(sel, 'settings'))} of endpoint {_take(sel, 'endpoint')}"


def _resumed(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    name, woken = _take(sel, "endpoint"), int(_take(counts, "woken", 0))
    if not _take(counts, "changed", 1):
        return f"resumed endpoint {name} (it was not paused)"
    text = f"resumed endpoint {name}"
    return text + (f", sending on {plural(woken, 'waiting delivery', 'waiting deliveries')}" if woken else "")


def _rotated_key(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    _take(sel, "settings"), _take(counts, "rotated"), _take(sel, "grace_seconds")
    return f"rotated the key of endpoint {_take(sel, 'endpoint')}, sent from the next attempt"


def _rotated_secret(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    _take(sel, "settings"), _take(counts, "rotated")
    text = f"rotated the signing secret of endpoint {_take(sel, 'endpoint')}"
    grace, retiring = int(_take(sel, "grace_seconds", 0) or 0), _take(counts, "retiring", 0)
    if grace and retiring:
        return f"{text}, the old one signing beside it for {span(grace)}"
    return text + (", the old one stopping at once" if retiring is not None and not grace else "")


def _removed(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    _take(counts, "removed"), _take(sel, "force")
    failed = int(_take(counts, "failed", 0))
    text = f"removed endpoint {_take(sel, 'endpoint')}"
    return text + (f", failing {plural(failed, 'pending delivery', 'pending deliveries')}" if failed else "")


def _imported(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    source = _take(sel, "source")
    replace = _take(sel, "replace")
    parts = [
        f"{verb} {shown('names', names)}"
        for verb, names in (
            ("added", _take(sel, "added")),
            ("rewrote", _take(sel, "changed")),
            ("removed", _take(sel, "removed")),
        )
        if names
    ]
    for key in ("added", "changed", "removed"):
        _take(counts, key)
    failed = int(_take(counts, "failed", 0))
    if failed:
        parts.append(f"failing {plural(failed, 'pending delivery', 'pending deliveries')}")
    text = (
        "imported the endpoints"
        + (f" of {source}" if source else "")
        + (", replacing them" if replace else "")
    )
    return f"{text}: {'; '.join(parts)}" if parts else f"{text}: the database held them already"


def _alerts_test(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    channels = _take(sel, "channels") or ()
    sent, failed = int(_take(counts, "sent", 0)), int(_take(counts, "failed", 0))
    answered = f"{sent:,} sent" + (f", {failed:,} failed" if failed else "")
    return f"sent a test alert to {shown('channels', list(channels))} ({answered})"


def _token_created(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    _take(counts, "created")
    scopes = _take(sel, "scopes") or ()
    return f"created API token {_take(sel, 'name')} with scopes {', '.join(str(s) for s in scopes)}"


def _token_revoked(sel: dict[str, Any], counts: dict[str, Any]) -> str:
    name = _take(sel, "name")
    if not _take(counts, "revoked", 1):
        return f"revoked API token {name} (it was revoked already)"
    return f"revoked API token {name}"


PHRASES: dict[str, Phrase] = {
    AuditAction.RETRY: _retry,
    AuditAction.REPLAY: _replay,
    AuditAction.PRUNE: _prune,
    AuditAction.RETENTION_RUN: _retention,
    AuditAction.LOG_ERASE: _erase,
    AuditAction.LOG_EXPORT: _export,
    AuditAction.ENDPOINTS_DISABLE: _endpoint("disabled"),
    AuditAction.ENDPOINTS_ENABLE: _endpoint("enabled"),
    AuditAction.STORAGE_ENCRYPT: _storage("sealed"),
    AuditAction.STORAGE_ROTATE: _storage("re-sealed"),
    AuditAction.DELIVERY_REVEAL: _reveal,
    AuditAction.ENDPOINTS_ADD: _added,
    AuditAction.ENDPOINTS_EDIT: _edited,
    AuditAction.ENDPOINTS_PAUSE: _endpoint("paused"),
    AuditAction.ENDPOINTS_RESUME: _resumed,
    AuditAction.ENDPOINTS_ROTATE_KEY: _rotated_key,
    AuditAction.ENDPOINTS_ROTATE_SECRET: _rotated_secret,
    AuditAction.ENDPOINTS_REMOVE: _removed,
    AuditAction.ENDPOINTS_IMPORT: _imported,
    AuditAction.ALERTS_TEST: _alerts_test,
    AuditAction.API_TOKENS_CREATE: _token_created,
    AuditAction.API_TOKENS_REVOKE: _token_revoked,
}

SCOPE: tuple[tuple[str, str], ...] = (
    ("endpoint", "to {}"),
    ("event", "event {}"),
    ("request_id", "request id {}"),
    ("statuses", "status {}"),
    ("since", "since {}"),
    ("until", "until {}"),
    ("updated_before", "last changed before {}"),
    ("patient_keys", "of one patient"),
    ("encounter_keys", "of one encounter"),
    ("business_key", "found by business id"),
)
"""How a selection's fields read after the action, in this order (``to`` the endpoint first)."""


def scope(sel: dict[str, Any]) -> str:
    """The selection's fields as the end of the sentence (taken out of ``sel``)."""
    parts = [form.format(shown(key, sel.pop(key))) for key, form in SCOPE if key in sel]
    if not parts:
        return ""
    first, *rest = parts
    return (" " if first.startswith(("to ", "of ")) else ", ") + ", ".join([first, *rest])


def describe(entry: AuditEntry) -> AuditLine:
    """``entry`` as a sentence, and the rest of its selection and (non-zero) counts as pairs."""
    sel, counts = dict(entry.selection), dict(entry.counts)
    via = sel.pop("via", None)
    who = f"{entry.actor} ({via})" if via else entry.actor
    phrase = PHRASES.get(entry.action)
    did = phrase(sel, counts) if phrase else f"did {entry.action}"
    sentence = f"{who} {did}{scope(sel)}"
    rest: Mapping[str, Any] = {**sel, **{k: v for k, v in counts.items() if v not in (0, None)}}
    details = tuple((key.replace("_", " "), shown(key, value)) for key, value in rest.items())
    return AuditLine(entry.id, entry.at, entry.action, sentence, details)
