"""Who is signed in, and as what: passwords (argon2id), the session, the trusted single sign-on
proxy, and the CSRF token every form carries.

The session is kept in Redis (:mod:`.sessions`); its cookie (HttpOnly, SameSite=Strict, Secure
with ``console.https``) holds only its random id. It is checked at every request, so signing
out, its hours running out, or the user's removal, new role or new password hash in the
settings end it at once. The proxy's header is believed only from an address in
``console.trusted_proxy.from``.

CSRF: a signed-in form carries the session's token. A form shown without a session (the
sign-in form; every form of a user the proxy signs in) carries an HMAC, keyed with the console's
secret, of a random nonce the browser holds in its own cookie (HttpOnly, SameSite=Strict), of how
the user signed in and of their name (both empty before sign-in): a signed double-submit token
bound to its user, so a nonce and token someone else was shown pass for no one but them.

With ``console.https`` both cookies have ``__Host-`` names (:func:`.sessions.cookie_name`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from ..config.console_settings import OPERATOR, ConsoleSettings, ConsoleUser
from . import sessions

PASSWORD = "password"
PROXY = "proxy"
FORM_COOKIE = "dispatcher_console_form"
FORM_COOKIE_SECONDS = 12 * 3600
"""How long a form shown without a session (the sign-in form) may be sent."""


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


def session_cookie(console: ConsoleSettings) -> str:
    """The session cookie's name (``__Host-`` prefixed with ``console.https``)."""
    return sessions.cookie_name(sessions.COOKIE, console.https)


def form_cookie(console: ConsoleSettings) -> str:
    """The form cookie's name (``__Host-`` prefixed with ``console.https``)."""
    return sessions.cookie_name(FORM_COOKIE, console.https)


def session_principal(request: Request, console: ConsoleSettings) -> Principal | None:
    """The password user of this request's session, if it still holds (Redis is read: run it off
    the event loop). :class:`~.sessions.MalformedCookie` for a cookie this console never made; a
    Redis error is the caller's."""
    request.state.session = None
    session_id = sessions.checked_id(request.cookies.get(session_cookie(console)))
    if session_id is None:
        return None
    client = request.app.state.runtime.redis
    session = sessions.load(client, session_id, console, time.time())
    if session is None:
        request.state.session_ended = True
        return None
    request.state.session = session
    return Principal(session.name, session.role, PASSWORD)


def sign_in(request: Request, user: ConsoleUser, response: Response) -> None:
    """Starts a new session for ``user`` (a fresh id and CSRF token: nothing from before
    survives; the session this browser had, if any, is ended) and sets its cookie."""
    client = request.app.state.runtime.redis
    sign_out(request)
    console = request.app.state.runtime.settings.console
    session_id, request.state.session = sessions.start(client, user, console.session_hours, time.time())
    response.set_cookie(
        session_cookie(console),
        session_id,
        max_age=console.session_hours * 3600,
        httponly=True,
        samesite="strict",
        secure=console.https,
    )


def sign_out(request: Request) -> None:
    """Ends this browser's session in Redis (a copy of its cookie opens nothing after)."""
    console = request.app.state.runtime.settings.console
    try:
        session_id = sessions.checked_id(request.cookies.get(session_cookie(console)))
    except sessions.MalformedCookie:
        return
    if session_id is not None:
        sessions.end(request.app.state.runtime.redis, session_id)


def forget_session(request: Request, response: Response) -> None:
    """Tells the browser to drop its session cookie."""
    console = request.app.state.runtime.settings.console
    response.delete_cookie(session_cookie(console), httponly=True, samesite="strict", secure=console.https)


def _form_token(request: Request, nonce: str, who: Principal | None) -> str:
    """The CSRF token of a form shown without a session: an HMAC of the form cookie's nonce, how
    ``who`` signed in and their name (both empty before sign-in)."""
    secret = request.app.state.secret.encode()
    via, name = (who.via, who.name) if who is not None else ("", "")
    message = b"\0".join([b"console-form", nonce.encode(), via.encode(), name.encode()])
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _form_nonce(request: Request) -> str | None:
    nonce = request.cookies.get(form_cookie(request.app.state.runtime.settings.console))
    return nonce if nonce is not None and sessions.SESSION_ID.fullmatch(nonce) else None


def csrf_token(request: Request, who: Principal | None) -> str:
    """The CSRF token a form shown to ``who`` carries: the session's; without one (the sign-in
    form, a user of the single sign-on proxy) an HMAC of a random nonce in its own cookie (made on
    first use) bound to ``who``."""
    session = getattr(request.state, "session", None)
    if isinstance(session, sessions.Session):
        return session.csrf
    nonce = _form_nonce(request) or getattr(request.state, "new_form_nonce", None)
    if nonce is None:
        nonce = request.state.new_form_nonce = secrets.token_urlsafe(32)
    return _form_token(request, nonce, who)


def csrf_ok(request: Request, sent: object, who: Principal | None) -> bool:
    """Whether ``sent`` is the CSRF token of this request, made by ``who`` (None: nobody signed
    in); any text, compared as bytes."""
    session = getattr(request.state, "session", None)
    if isinstance(session, sessions.Session):
        expected = session.csrf
    else:
        nonce = _form_nonce(request)
        if nonce is None:
            return False
        expected = _form_token(request, nonce, who)
    if not isinstance(sent, str) or not sent.isascii():
        return False
    return hmac.compare_digest(expected.encode(), sent.encode())


def attach_cookies(request: Request, response: Response) -> None:
    """Sets the form cookie when :func:`csrf_token` made its nonce for this response."""
    nonce = getattr(request.state, "new_form_nonce", None)
    if nonce is not None:
        console = request.app.state.runtime.settings.console
        response.set_cookie(
            form_cookie(console),
            nonce,
            max_age=FORM_COOKIE_SECONDS,
            httponly=True,
            samesite="strict",
            secure=console.https,
        )
