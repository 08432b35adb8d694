"""The checks the settings' types run beyond their type, and quoting a value in an error.

Each check takes a value already of its type and returns it (perhaps normalized), or raises
:class:`Problem` saying what is wrong in words; pydantic carries the problem to
:mod:`.problems`, which names the setting. A value quoted in a problem is cut short
(:func:`shown`), whatever its size or shape (a YAML alias can make one value of millions), and
a secret or a URL's password is never quoted at all.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import reprlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from urllib.parse import urlsplit

from ..contract.signing import decode_secret
from ..redaction import mask_url
from ..times import parse_duration
from ..vocabulary import EVENT_NAMES
from .redis_urls import SENTINEL_FORM, is_sentinel_url, parse_sentinel_url

SHOWN_CHARS = 120
"""The most characters of a value an error quotes."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 4
_REPR.maxlong = 40

# Printable ASCII with no space at either end: what requests (and any HTTP server) takes as a
# header value. A space inside is allowed (RFC 9110 field-value); a tab or line break is not.
_HEADER_VALUE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
HEADER_VALUE_RULE = "printable ASCII, no leading or trailing spaces, no line breaks"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_SECRET_FORM = "a Standard Webhooks secret: whsec_ + base64 of 24-64 bytes"


class Problem(ValueError):
    """What is wrong with a setting, in words: the ``problem`` of the ConfigError.

    ``at`` names the setting it is about below the one being checked (a section's check of one
    of its own settings: ``("cap",)``; the whole file's: ``("endpoints", 2, "name")``).
    ``sibling``: ``{sibling}`` in the text becomes the path of that setting beside the one at
    fault (``put the key in {sibling}`` -> ``endpoints[1].key``).
    """

    def __init__(self, text: str, at: tuple[str | int, ...] = (), sibling: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.at = at
        self.sibling = sibling


class UnknownSetting(Problem):
    """A key the section does not have; the error names it as written."""

    def __init__(self, key: object, known: list[str]) -> None:
        super().__init__(f"unknown setting; expected one of: {', '.join(known)}")
        self.key = key


_CONCEALED: ContextVar[Mapping[str, str] | None] = ContextVar("concealed", default=None)


@contextmanager
def concealing(written: Mapping[str, str]) -> Iterator[None]:
    """While validating: a value that came from the environment (a key of ``written``) is quoted
    as the file wrote it (``'${PARTNER_KEY}'``), never as its value (:mod:`.interpolation`)."""
    token = _CONCEALED.set(written)
    try:
        yield
    finally:
        _CONCEALED.reset(token)


def concealed(value: object) -> str | None:
    """The text the file wrote for ``value`` when the environment gave it, else None."""
    written = _CONCEALED.get()
    return written.get(value) if written and isinstance(value, str) else None


def shown(value: object) -> str:
    """``repr(value)`` cut to at most :data:`SHOWN_CHARS` characters, never failing; a value
    from the environment as the file wrote it (:func:`concealing`)."""
    written = concealed(value)
    if written is not None:
        value = written
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - e.g. an int with more digits than str() converts
        text = f"<{type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def shown_url(url: object) -> str:
    """A URL for an error: its password masked, cut short (as written, when from the environment)."""
    written = concealed(url)
    if written is not None:  # '${DATABASE_URL}', or a URL around a reference
        return shown(mask_url(written) if "://" in written else written)
    return shown(mask_url(url) if isinstance(url, str) else url)


def got(value: object, secret: bool = False) -> str:
    """``got <type> <value>`` for a wrong value: a secret's type only; true/false alone."""
    if isinstance(value, bool):
        return f"got {value}"
    return f"got {type(value).__name__}" if secret else f"got {type(value).__name__} {shown(value)}"


def unicode_text(value: str) -> str:
    """Text that can be written anywhere: no lone surrogate (a YAML ``"\\ud800"`` escape, or a
    byte that is not UTF-8 in an environment variable). The value itself is not quoted."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        raise Problem(
            f"is not valid text: a lone surrogate \\u{code:04x} at character {exc.start + 1} "
            "(a bad \\u escape, or bytes that are not UTF-8)"
        ) from None
    return value


def not_blank(value: str) -> str:
    if not value.strip():
        raise Problem("must not be empty")
    return value


def endpoint_name(value: str) -> str:
    """An endpoint's name, without spaces at either end; not empty."""
    return not_blank(value).strip()


def header_key(key: str) -> str:
    """The key is sent as the X-Webhook-Key header: a value requests refuses would fail every
    delivery, and its error would quote the key. No message here repeats the key."""
    if not key:
        raise Problem("must not be empty; leave it out to use the default key")
    if not _HEADER_VALUE.fullmatch(key):
        raise Problem(f"must be a valid HTTP header value: {HEADER_VALUE_RULE}")
    return key


def url_text(url: str) -> str:
    """No control character (a line break from a YAML block scalar) and no space at either end.
    The problem does not quote the URL (it may carry a password)."""
    if _CONTROL.search(url) or url != url.strip():
        raise Problem("must not contain control characters or line breaks, nor spaces at either end")
    return url


def endpoint_url(url: str) -> str:
    """An endpoint's URL: http(s), a host, and no credentials (the key goes in ``key``)."""
    url_text(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unclosed [IPv6] bracket
        raise Problem(f"is not a valid URL: {shown_url(url)}") from None
    if "@" in parts.netloc:
        raise Problem("must not carry credentials (user:password@); put the key in {sibling}", sibling="key")
    if parts.scheme not in ("http", "https") or not host:
        raise Problem(f"must be an http:// or https:// URL with a host, got {shown_url(url)}")
    return url


def redis_url(url: str) -> str:
    url_text(url)
    try:
        scheme = urlsplit(url).scheme
    except ValueError:  # e.g. an unclosed [IPv6] bracket
        scheme = ""
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            raise Problem(f"{shown_url(url)} {exc}") from None
        return url
    if scheme not in _REDIS_SCHEMES:
        raise Problem(f"expected a redis:// URL or {SENTINEL_FORM}, got {shown_url(url)}")
    return url


def database_url(url: str) -> str:
    url_text(url)
    if "://" not in url:
        raise Problem(f"expected an SQLAlchemy URL such as sqlite:///path.db, got {shown_url(url)}")
    return url


def event_field(name: str) -> str:
    """A field that some event's data has (an ordering field)."""
    from ..contract.catalogue import CATALOGUE

    fields = sorted({f for model in CATALOGUE.values() for f in model.model_fields})
    if name not in fields:
        raise Problem(f"unknown event field {shown(name)}; expected one of: {', '.join(fields)}")
    return name


def known_event(name: str) -> str:
    if name != "*" and name not in EVENT_NAMES:
        raise Problem(f"unknown event {shown(name)}; expected '*' or one of: {', '.join(EVENT_NAMES)}")
    return name


def network(entry: str) -> str:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise Problem(f"expected a network like 127.0.0.0/8 or ::1/128, got {shown(entry)}") from None
    return entry


def existing_file(path: str) -> str:
    if not Path(path).is_file():
        raise Problem(f"file {shown(path)} does not exist")
    return path


def signing_secret(secret: str) -> str:
    """A ``whsec_`` secret that decodes; the problem never repeats the secret."""
    try:
        decode_secret(secret)
    except ValueError as exc:
        raise Problem(f"{exc} ({_SECRET_FORM})") from None
    return secret


STORAGE_KEY_HINT = "dispatcher keys generate --storage prints one"


def storage_key(key: str) -> str:
    """A storage key: url-safe base64 of 32 bytes (a Fernet key). The problem never repeats it."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise Problem(
            f"is not a storage key: expected url-safe base64 of 32 bytes ({STORAGE_KEY_HINT})"
        ) from None
    if len(raw) != 32:
        raise Problem(f"is not a storage key: it decodes to {len(raw)} bytes, not 32 ({STORAGE_KEY_HINT})")
    return key


SEARCH_KEY_MIN_CHARS = 32


def search_key(key: str) -> str:
    """The business-id search index's HMAC key: at least 32 printable ASCII characters. The
    problem never repeats it."""
    if len(key) < SEARCH_KEY_MIN_CHARS or not all(" " <= c <= "~" for c in key):
        raise Problem(
            f"must be at least {SEARCH_KEY_MIN_CHARS} printable ASCII characters "
            "(dispatcher keys generate --search prints one)"
        )
    return key


def backoff_name(name: str) -> str:
    if name != "exponential":
        raise Problem(f"expected 'exponential', a list of seconds or a mapping, got {shown(name)}")
    return name


def duration_seconds(value: object, longest: int) -> int:
    """Whole seconds (rounded up) from ``90``, ``"45s"``, ``"5d"``, ``"1h 30m"``
    (:func:`dispatcher.times.parse_duration`), at most ``longest``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Problem(f"expected a string or an integer, {got(value)}")
    try:
        seconds = math.ceil(parse_duration(unicode_text(value) if isinstance(value, str) else value))
    except (ValueError, OverflowError) as exc:
        if concealed(value) is not None:  # parse_duration's words would quote the value
            raise Problem(f"{shown(value)} is not a duration longer than 0 (45s, 30m, 12h, 5d, 2w)") from None
        raise Problem(str(exc)) from None  # parse_duration quotes the value cut short
    if seconds > longest:
        raise Problem(f"must be at most {longest} seconds, got {shown(value)}")
    return seconds
