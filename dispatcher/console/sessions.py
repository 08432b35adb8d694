"""The console's sessions, kept in Redis: the browser holds only a random session id.

A session is a Redis hash under ``dispatcher:console:session:<SHA-256 of the id>`` (the id
itself is never a key, so reading Redis gives no one a cookie) holding the user's name, when they
signed in, the session's CSRF token, the role they signed in with and a fingerprint (SHA-256) of
their ``password_hash`` -- never the hash. It expires ``console.session_hours`` after sign-in.

Every request checks it again: it exists, it is younger than ``session_hours``, and the user is
still in the settings with the same role and the same password hash. Otherwise it is deleted and
the browser is sent to sign in, whoever holds a copy of the cookie. Signing out deletes it.

With ``console.https`` the cookie is named ``__Host-dispatcher_console_session`` (a browser
takes it only Secure, for ``Path=/`` and with no ``Domain``: a sibling host cannot set or shadow
it); without, ``dispatcher_console_session``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config.console_settings import ConsoleSettings, ConsoleUser

if TYPE_CHECKING:
    import redis

COOKIE = "dispatcher_console_session"
HOST_PREFIX = "__Host-"
KEY_PREFIX = "dispatcher:console:session:"
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
"""What :func:`secrets.token_urlsafe` (32 bytes) makes: any other cookie value is malformed."""


class MalformedCookie(ValueError):
    """The session cookie is not one this console makes."""


@dataclass(frozen=True)
class Session:
    key: str
    name: str
    role: str
    since: float
    csrf: str


def cookie_name(name: str, https: bool) -> str:
    """A cookie's name as the console sets, reads and clears it: ``__Host-`` prefixed over https."""
    return HOST_PREFIX + name if https else name


def fingerprint(password_hash: str) -> str:
    """What a session keeps of the user's password hash: a SHA-256 of it (the hash's salt is not
    in it, so it helps no one guess the password)."""
    return hashlib.sha256(b"dispatcher-console-password\0" + password_hash.encode()).hexdigest()


def key_of(session_id: str) -> str:
    return KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


def checked_id(cookie: str | None) -> str | None:
    """The session id of a cookie value, None when there is none; :class:`MalformedCookie` when
    it is not one this console makes."""
    if cookie is None or cookie == "":
        return None
    if not SESSION_ID.fullmatch(cookie):
        raise MalformedCookie("the session cookie is not one this console makes")
    return cookie


def start(client: redis.Redis, user: ConsoleUser, hours: int, now: float) -> tuple[str, Session]:
    """A new session for ``user``: its id (the cookie's value) and the session."""
    session_id = secrets.token_urlsafe(32)
    session = Session(key_of(session_id), user.name, user.role, now, secrets.token_urlsafe(32))
    record: dict[Any, Any] = {
        "user": user.name,
        "role": user.role,
        "since": repr(now),
        "csrf": session.csrf,
        "password": fingerprint(user.password_hash.reveal()),
    }
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(session.key, mapping=record)
        pipe.expire(session.key, hours * 3600)
        pipe.execute()
    return session_id, session


def _text(record: Mapping[Any, Any], field: str) -> str:
    """A field of a stored session as text (the client returns bytes; a test may write str)."""
    value = record.get(field.encode(), record.get(field, b""))
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def valid(record: Mapping[Any, Any], console: ConsoleSettings, now: float) -> bool:
    """Whether a stored session still holds: young enough, its user unchanged in the settings."""
    try:
        since = float(_text(record, "since"))
    except ValueError:
        return False
    user = console.user(_text(record, "user"))
    return (
        user is not None
        and 0 <= now - since < console.session_hours * 3600
        and user.role == _text(record, "role")
        and secrets.compare_digest(
            fingerprint(user.password_hash.reveal()).encode(), _text(record, "password").encode()
        )
        and len(_text(record, "csrf")) >= 32
    )


def load(client: redis.Redis, session_id: str, console: ConsoleSettings, now: float) -> Session | None:
    """The session of ``session_id`` if it still holds; one that no longer does is deleted."""
    key = key_of(session_id)
    record = client.hgetall(key)
    if not record:
        return None
    if not valid(record, console, now):
        client.delete(key)
        return None
    return Session(
        key,
        _text(record, "user"),
        _text(record, "role"),
        float(_text(record, "since")),
        _text(record, "csrf"),
    )


def end(client: redis.Redis, session_id: str) -> None:
    client.delete(key_of(session_id))
