"""The deliveries page's filters: read from the query string into a store Selection, written
back into links, and the patient and business-id tokens.

A patient or encounter id is PHI, so it never enters a URL: the search form posts it, and the
page's links carry a *patient token* instead -- the keyed hashes the deliveries are stored under
(:meth:`~dispatcher.store.sealing.Keyring.candidates`), encrypted with a key derived from the
session secret, valid as long as a session. A business id (an order number, a prescription, an
encounter or a patient id) is searched the same way: posted, and carried in links as a *search
token* holding its keyed hash (:func:`dispatcher.store.search.business_key`), never the id.
Pure but for the clock the tokens read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from ..store import Selection
from ..store.browsing import Cursor
from ..times import parse_moment
from ..vocabulary import EVENT_NAMES, DeliveryStatus

T = TypeVar("T")

TEXT_FIELDS = ("status", "event", "endpoint", "since", "until", "request_id")
STATUSES = tuple(s.value for s in DeliveryStatus)
MAX_REQUEST_ID = 36


@dataclass
class Filters:
    """What the deliveries page was asked for, as typed (to refill the form), and its problems."""

    values: dict[str, str] = field(default_factory=dict)
    patient_token: str = ""
    patient_keys: tuple[str, ...] = ()
    encounter_keys: tuple[str, ...] = ()
    search_token: str = ""
    business_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: Cursor | None = None
    problems: list[str] = field(default_factory=list)

    def selection(self, *, statuses: Sequence[str] | None = None) -> Selection:
        status = self.values.get("status")
        return Selection(
            statuses=tuple(statuses) if statuses is not None else ((status,) if status else ()),
            event=self.values.get("event") or None,
            endpoint=self.values.get("endpoint") or None,
            request_id=self.values.get("request_id") or None,
            since=self.since,
            until=self.until,
            patient_keys=self.patient_keys,
            encounter_keys=self.encounter_keys,
            business_key=self.business_key,
        )

    def query(self, **changes: str) -> str:
        """The query string of these filters (no cursor), with ``changes``."""
        params = {**self.values, **self.tokens(), **changes}
        return urlencode({k: v for k, v in params.items() if v})

    def tokens(self) -> dict[str, str]:
        """The patient and search tokens in force, by their query names."""
        tokens = {"patient": self.patient_token, "find": self.search_token}
        return {name: token for name, token in tokens.items() if token}

    @property
    def active(self) -> bool:
        return bool(any(self.values.values()) or self.patient_token or self.search_token)


def read_filters(
    params: Mapping[str, str], endpoints: Sequence[str], secret: str, token_seconds: int, now: datetime
) -> Filters:
    """The filters of a query string; a bad value is a problem and filters nothing."""
    filters = Filters(values={name: params.get(name, "").strip() for name in TEXT_FIELDS})
    values = filters.values
    _check_choice(filters, "status", STATUSES)
    _check_choice(filters, "event", EVENT_NAMES)
    _check_choice(filters, "endpoint", endpoints)
    if len(values["request_id"]) > MAX_REQUEST_ID:
        filters.problems.append("request_id: too long for a request id")
        values["request_id"] = ""
    filters.since = _moment(filters, "since", now)
    filters.until = _moment(filters, "until", now)
    if filters.since and filters.until and filters.since >= filters.until:
        filters.problems.append("since must be before until")
    _read_tokens(filters, params, secret, token_seconds, now)
    filters.cursor = read_cursor(params.get("before", ""))
    return filters


def _read_tokens(
    filters: Filters, params: Mapping[str, str], secret: str, token_seconds: int, now: datetime
) -> None:
    """The patient and business-id filters, from the tokens their links carry (an expired one is
    a problem shown on the page, saying to search again)."""

    def opened(name: str, opener: Callable[..., T | None], expired: str) -> tuple[str, T] | None:
        token = params.get(name, "")
        held = opener(token, secret, token_seconds, now) if token else None
        if token and held is None:
            filters.problems.append(expired)
        return (token, held) if held is not None else None

    if patient := opened(
        "patient", open_patient_token, "the patient filter has expired: search for the patient again"
    ):
        filters.patient_token, (filters.patient_keys, filters.encounter_keys) = patient
    if found := opened("find", open_search_token, "the business id search has expired: search again"):
        filters.search_token, filters.business_key = found


def _check_choice(filters: Filters, name: str, choices: Sequence[str]) -> None:
    value = filters.values[name]
    if value and value not in choices:
        filters.problems.append(f"{name}: no such {name} {value[:40]!r}")
        filters.values[name] = ""


def _moment(filters: Filters, name: str, now: datetime) -> datetime | None:
    text = filters.values[name]
    if not text:
        return None
    try:
        return parse_moment(text, now)
    except ValueError as exc:
        filters.problems.append(f"{name}: {exc}")
        filters.values[name] = ""
        return None


def write_cursor(cursor: Cursor) -> str:
    return f"{cursor[0].isoformat()}~{cursor[1]}"


def read_cursor(text: str) -> Cursor | None:
    moment, _, request_id = text.partition("~")
    if not moment or not request_id or len(request_id) > MAX_REQUEST_ID:
        return None
    try:
        return parse_moment(datetime.fromisoformat(moment)), request_id
    except ValueError:
        return None


def _fernet(secret: str):  # type: ignore[no-untyped-def]
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(b"dispatcher console patient token\0" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _seal(document: dict[str, Any], secret: str) -> str:
    return str(_fernet(secret).encrypt(json.dumps(document).encode()).decode("ascii"))


def _open(token: str, secret: str, seconds: int, now: datetime) -> Any:
    """The document a token holds; raises when it is not ours or too old."""
    text = _fernet(secret).decrypt_at_time(token.encode("ascii"), seconds, int(now.timestamp()))
    return json.loads(text)


def patient_token(patient_keys: Sequence[str], encounter_keys: Sequence[str], secret: str) -> str:
    """The token a link carries for a patient (and encounter) filter: their keyed hashes, encrypted."""
    return _seal({"p": list(patient_keys), "e": list(encounter_keys)}, secret)


def open_patient_token(
    token: str, secret: str, seconds: int, now: datetime
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The patient and encounter keys a token holds, or None when it is not ours or too old."""
    from cryptography.fernet import InvalidToken

    try:
        document = _open(token, secret, seconds, now)
        return tuple(map(str, document["p"])), tuple(map(str, document["e"]))
    except (InvalidToken, UnicodeError, ValueError, KeyError, TypeError):
        return None


def search_token(business_key: str, secret: str) -> str:
    """The token a link carries for a business-id search: the id's keyed hash, encrypted (so a
    link does not show which deliveries share an id)."""
    return _seal({"b": business_key}, secret)


def open_search_token(token: str, secret: str, seconds: int, now: datetime) -> str | None:
    """The business key a search token holds, or None when it is not ours or too old."""
    from cryptography.fernet import InvalidToken

    try:
        key = _open(token, secret, seconds, now)["b"]
    except (InvalidToken, UnicodeError, ValueError, KeyError, TypeError):
        return None
    return key if isinstance(key, str) and re.fullmatch(r"[0-9a-f]{64}", key) else None
