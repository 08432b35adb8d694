"""Masking what must never be shown: configured secrets however they were escaped, and the
password of any URL.

A secret reaches text in many spellings: raw, inside a ``repr`` (``'abc\\n'``: what ``requests``
quotes when it refuses a header), JSON-escaped (a stored error exported as JSON), URL-quoted (a
query string), or without the whitespace around it. A :class:`Masker` made from the secrets
replaces every one of those spellings, longest first. :func:`mask_url` hides the password (and
any userinfo that may be one) of a URL, for Redis, SQLAlchemy and Sentinel URLs with several
hosts alike, and never raises.

Part of the shared kernel: imports nothing from the package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import overload
from urllib.parse import quote, quote_plus, unquote

MASK = "****"

_PERCENT = re.compile(r"%[0-9A-F]{2}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
# SQLAlchemy's reading of userinfo: user:password@ where the password may hold / ? # (not @).
_SQLALCHEMY_USERINFO = re.compile(r"[^:/@?#]*:[^@]*@")
# A query parameter whose value is masked: password=, sentinel_password=, token=, api_key=...
_SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)


def _escapes(text: str) -> set[str]:
    """``text`` as the escapes it may appear in: repr, unicode_escape, JSON, bytes repr, URL."""
    quoted = {quote(text, safe=""), quote(text), quote_plus(text)}
    return {
        text,
        repr(text)[1:-1],
        text.encode("unicode_escape").decode("ascii"),
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(text.encode("utf-8"))[2:-1],
        *quoted,
        *(_PERCENT.sub(lambda m: m.group().lower(), q) for q in quoted),
    }


def escaped_forms(secret: str) -> set[str]:
    """Every spelling of ``secret`` a :class:`Masker` replaces: the secret and the secret without
    surrounding whitespace, each raw and escaped (:func:`_escapes`), and each escape once more
    JSON- or repr-escaped (a ``repr`` quoted inside a JSON document). A secret of whitespace only
    has none: masking every run of spaces would hide the text, not a secret.
    """
    forms: set[str] = set()
    for base in {secret, secret.strip()}:
        if not base.strip():
            continue
        once = _escapes(base)
        forms |= once
        for form in once:
            forms |= {json.dumps(form)[1:-1], repr(form)[1:-1]}
    forms.discard("")
    return forms


class Masker:
    """Replaces every configured secret in a text, in each of its escaped forms, longest first
    (so a secret that contains another is masked whole)."""

    def __init__(self, secrets: Iterable[str], mask: str = MASK) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        self.mask_text = mask
        forms = set().union(*(escaped_forms(s) for s in self.secrets))
        self.forms = tuple(sorted(forms, key=lambda f: (-len(f), f)))

    def __bool__(self) -> bool:
        return bool(self.forms)

    @overload
    def mask(self, text: str) -> str: ...

    @overload
    def mask(self, text: None) -> None: ...

    def mask(self, text: str | None) -> str | None:
        """``text`` with every form of every secret replaced by the mask (None stays None)."""
        if not text:
            return text
        for form in self.forms:
            if form in text:
                text = text.replace(form, self.mask_text)
        return text

    __call__ = mask


def mask_url(url: str) -> str:
    """``url`` with its password hidden: ``redis://user:****@host:6379/0``.

    The userinfo is what comes before the last ``@`` of the authority, or (as SQLAlchemy reads it)
    ``user:password@`` whose password holds ``/``, ``?`` or ``#``, whichever is longer. A userinfo
    without ``:`` is masked whole, since Redis URLs are often written ``redis://password@host``.
    Query parameters named like a password, token, secret or key are masked too. Several hosts
    (``redis+sentinel://u:p@h1:26379,h2:26379/mymaster/0``) are kept. A text that is not a URL
    shows only its scheme: ``scheme://...``.
    """
    try:
        return _mask_url(url)
    except Exception:  # noqa: BLE001 - masking never fails; it shows less instead
        return _scheme_only(url)


def _scheme_only(url: object) -> str:
    head = url.split(":", 1)[0] if isinstance(url, str) else ""
    return (head if _SCHEME.fullmatch(head) else "?") + "://..."


def _mask_url(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    if not separator or not _SCHEME.fullmatch(scheme):
        return _scheme_only(url)
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, authority_end)
    sqlalchemy = _SQLALCHEMY_USERINFO.match(rest)
    end = max(at + 1, sqlalchemy.end() if sqlalchemy else 0)
    if end:
        user, colon, _ = rest[: end - 1].partition(":")
        rest = (f"{user}:{MASK}" if colon else MASK) + "@" + rest[end:]
    return f"{scheme}://{_mask_query(rest)}"


def _mask_query(rest: str) -> str:
    before, question, after = rest.partition("?")
    if not question:
        return rest
    query, hash_, fragment = after.partition("#")
    pairs = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if equals and value and _SECRET_PARAMETER.search(unquote(name)):
            pair = f"{name}={MASK}"
        pairs.append(pair)
    return f"{before}?{'&'.join(pairs)}{hash_}{fragment}"
