"""Encryption at rest: the PHI columns sealed with the storage keys, and the keyed hashes that
find a patient's deliveries without opening any payload.

The PHI columns (a delivery's ``payload``, an attempt's ``request_payload``, ``response_body``
and ``error``, which holds the partner's reason phrase) are :class:`SealedText`: with storage keys configured, every value written is
sealed -- Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the first key, behind
the prefix :data:`PREFIX` and that key's id -- and every value read is opened with the key it
names. Without keys, values are written as they are. A value written before keys were
set is read as it is; ``dispatcher storage encrypt`` seals those, ``storage rotate`` re-seals
under the first key.

A sealed value no configured key opens is read as :class:`Unreadable` (the sealed text, and why),
never an exception: a report names the row, a worker fails the delivery as unusable.

The engine carries the keyring (:func:`attach`). A value that is sealed already (it starts with
:data:`PREFIX`) is written as it is: a caller's own engine has no keyring, so the outbox seals
explicitly, and the spool keeps attempt records sealed on disk.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ..config.checks import storage_key

PREFIX = "sealed:v1:"
"""What a sealed value starts with: the scheme and its version."""
NO_PATIENT = "-"
"""The patient (and encounter) key of an event that names no patient."""
_UNKEYED = b"dispatcher: no storage key configured"
"""The index key without storage keys: the payloads are plain text then, so an unkeyed hash of an
id reveals nothing they do not."""
_INDEX_INFO = b"dispatcher patient index v1"


class Unreadable(str):
    """A sealed value no configured key opens: its sealed text, and :attr:`problem`."""

    __slots__ = ("problem",)
    problem: str

    def __new__(cls, text: str, problem: str) -> Unreadable:
        value = super().__new__(cls, text)
        value.problem = problem
        return value


def check_key(key: str) -> bytes:
    """The 32 bytes of a storage key (url-safe base64, as ``keys generate --storage`` prints).

    Raises:
        ValueError: not url-safe base64 of 32 bytes; the message never quotes the key.
    """
    storage_key(key)
    return base64.urlsafe_b64decode(key.encode("ascii"))


def new_key() -> str:
    """A new random storage key."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class Keyring:
    """The storage keys: the first seals and indexes, every one opens and finds.

    A sealed value is ``sealed:v1:<key id>:<Fernet token>``; the key id (8 hex digits of the
    key's SHA-256) says which key opens it, so a row under a key no longer configured is named
    with that key's id, and rotation finds the rows still under an older key in SQL.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        raws = [check_key(k) for k in keys]
        self.key_ids = [key_id(raw) for raw in raws]
        self._fernets: dict[str, Any] = {}
        if raws:
            from cryptography.fernet import Fernet

            self._fernets = {
                kid: Fernet(base64.urlsafe_b64encode(raw))
                for kid, raw in zip(self.key_ids, raws, strict=True)
            }
        self._index_keys = [_index_key(raw) for raw in raws]

    @property
    def sealing(self) -> bool:
        return bool(self.key_ids)

    @property
    def first_prefix(self) -> str:
        """What a value sealed under the first key starts with."""
        return f"{PREFIX}{self.key_ids[0]}:" if self.key_ids else PREFIX

    def seal(self, text: str) -> str:
        """``text`` sealed under the first key; as it is without keys or when sealed already."""
        if not self.key_ids or text.startswith(PREFIX):
            return text
        token = self._fernets[self.key_ids[0]].encrypt(text.encode("utf-8", "surrogatepass"))
        return f"{PREFIX}{self.key_ids[0]}:{token.decode('ascii')}"

    def open(self, stored: str) -> str:
        """The text of a stored value: opened if sealed, as it is if not, :class:`Unreadable`
        when no configured key opens it."""
        if not stored.startswith(PREFIX):
            return stored
        kid, _, token = stored[len(PREFIX) :].partition(":")
        fernet = self._fernets.get(kid)
        if fernet is None:
            return Unreadable(
                stored, f"it is encrypted under storage key {kid}, which is not in storage_keys"
            )
        from cryptography.fernet import InvalidToken

        try:
            return str(fernet.decrypt(token.encode("ascii")).decode("utf-8", "surrogatepass"))
        except (InvalidToken, UnicodeError, ValueError):
            return Unreadable(stored, f"it does not open with storage key {kid} (damaged)")

    def index(self, value: str) -> str:
        """The key a patient or encounter id is stored and found by: HMAC-SHA256 under the first
        key (hex); a plain SHA-256 without keys."""
        return _hmac(self._index_keys[0] if self._index_keys else _UNKEYED, value)

    def candidates(self, value: str) -> list[str]:
        """Every key ``value`` may have been stored under: one per storage key, and the unkeyed
        hash of a row written before keys were set."""
        return list(dict.fromkeys(_hmac(k, value) for k in [*self._index_keys, _UNKEYED]))


def key_id(raw: bytes) -> str:
    """The id a sealed value names its key by: 8 hex digits of the key's SHA-256."""
    return hashlib.sha256(raw).hexdigest()[:8]


def _index_key(raw: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INDEX_INFO).derive(raw)


def _hmac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


PLAIN = Keyring(())
"""No storage keys: values written and read as they are."""


def attach(engine: sa.engine.Engine, keyring: Keyring) -> None:
    """Makes ``engine`` seal and open the PHI columns with ``keyring``."""
    engine.dialect.dispatcher_keyring = keyring  # type: ignore[attr-defined]


def keyring_of(dialect: Any) -> Keyring:
    keyring: Keyring = getattr(dialect, "dispatcher_keyring", PLAIN)
    return keyring


class SealedText(sa.types.TypeDecorator[str]):
    """Text sealed with the engine's keyring on the way in and opened on the way out."""

    impl = sa.String()
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).seal(value)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).open(value)
