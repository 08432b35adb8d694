"""Who is signed in, and as what: passwords (argon2id), the session, the trusted single sign-on
proxy, and the CSRF token every form carries.

The session is Starlette's signed cookie (HttpOnly, SameSite=Strict, Secure with
``console.https``) holding the user's name, when they signed in and the CSRF token -- never a
password or its hash. A name's role is read from the settings at each request, so a user
removed from the file is signed out at once. The proxy's header is believed only from an
address in ``console.trusted_proxy.from``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request

from ..config.console_settings import OPERATOR, ConsoleSettings

PASSWORD = "password"
PROXY = "proxy"


@dataclass(frozen=True)
class Principal:
    """The signed-in user: their name (the audit's actor) and role."""

    name: str
    role: str
    via: str

    @property
    def operator(self) -> bool:
        return self.role == OPERATOR


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (argon2-cffi's recommended parameters)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


_DUMMY_HASH: list[str] = []


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches the hash; an unknown name (None) costs as much and fails."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    if stored_hash is None:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
        try:
            PasswordHasher().verify(_DUMMY_HASH[0], password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    try:
        return bool(PasswordHasher().verify(stored_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def proxy_principal(request: Request, console: ConsoleSettings) -> Principal | None | bool:
    """The user the trusted proxy names: a Principal, False when the name may not enter, None
    when no trusted proxy speaks for this request."""
    proxy = console.trusted_proxy
    client = request.client
    if proxy is None or client is None:
        return None
    name = request.headers.get(proxy.header, "").strip()
    if not name or not _from_networks(client.host, proxy.networks):
        return None
    role = console.proxy_role(name)
    return Principal(name[:255], role, PROXY) if role else False


def _from_networks(host: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def session_principal(
    request: Request, console: ConsoleSettings, now: float | None = None
) -> Principal | None:
    """The password user of this session, if it is still valid."""
    session = request.session
    name, since = session.get("user"), session.get("since")
    if not isinstance(name, str) or not isinstance(since, int | float):
        return None
    if (now or time.time()) - since >= console.session_hours * 3600:
        session.clear()
        return None
    user = console.user(name)
    if user is None:
        session.clear()
        return None
    return Principal(user.name, user.role, PASSWORD)


def sign_in(request: Request, name: str) -> None:
    """Starts a new session for ``name`` (a fresh CSRF token: none from before survives)."""
    request.session.clear()
    request.session.update({"user": name, "since": int(time.time()), "csrf": secrets.token_urlsafe(32)})


def sign_out(request: Request) -> None:
    request.session.clear()


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (the login form has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    token = request.session.get("csrf")
    return isinstance(token, str) and isinstance(sent, str) and hmac.compare_digest(token, sent)
