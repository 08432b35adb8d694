"""How the sender reaches a partner beyond the URL and the key, as values: extra headers, the
``Authorization`` it adds (Basic, Bearer, or an OAuth2 client credentials token), a client
certificate for mutual TLS, and the proxy. Built by :mod:`.partner` from the file; read by
:mod:`dispatcher.sending`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote_plus, unquote, urlsplit

NO_PROXY = "none"
"""An endpoint's ``proxy: none``: sent directly, whatever ``delivery.proxy`` says."""

FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "x-webhook-key",
        "authorization",
        "proxy-authorization",
    }
)
"""Headers ``headers:`` may not set (lowercase); nor any ``webhook-*`` (Standard Webhooks')."""


class OAuth2Method(StrEnum):
    """How the client authenticates to the token endpoint (RFC 6749 2.3, RFC 7523)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"


JWT_ALGORITHMS = ("RS384", "ES384")
"""The signing algorithms of a ``private_key_jwt`` assertion (SMART Backend Services')."""


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str

    def header(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def secrets(self) -> list[str]:
        return [self.password, self.header().split(" ", 1)[1]]


@dataclass(frozen=True)
class BearerAuth:
    token: str

    def header(self) -> str:
        return f"Bearer {self.token}"

    def secrets(self) -> list[str]:
        return [self.token]


@dataclass(frozen=True)
class OAuth2Client:
    """The client credentials grant: the token fetched from ``token_url`` is sent as Bearer."""

    token_url: str
    client_id: str
    method: OAuth2Method = OAuth2Method.CLIENT_SECRET_BASIC
    client_secret: str | None = None
    scope: str | None = None
    audience: str | None = None
    private_key: str | None = None
    """A PEM file (RSA or EC), for ``private_key_jwt``."""
    key_id: str | None = None
    algorithm: str = "RS384"

    def basic_header(self) -> str:
        """``Authorization`` for ``client_secret_basic``: id and secret each form-urlencoded first
        (RFC 6749 2.3.1), so a ``:`` or non-ASCII in either survives."""
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret or '')}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def secrets(self) -> list[str]:
        """The secret, and the Basic pair in both encodings (as written, and RFC 6749's)."""
        if self.client_secret is None:
            return []
        plain = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode("ascii")
        return [self.client_secret, *sorted({plain, self.basic_header().split(" ", 1)[1]})]


Auth = BasicAuth | BearerAuth | OAuth2Client


@dataclass(frozen=True)
class ClientCert:
    """Mutual TLS: the certificate (PEM) shown to the partner, its key (in the same file when
    None), and the key's passphrase when it is encrypted."""

    cert: str
    key: str | None = None
    key_password: str | None = None


def proxy_secrets(proxy: str | None) -> list[str]:
    """A proxy URL's password and userinfo, raw and unquoted (for masking)."""
    if not proxy or proxy == NO_PROXY:
        return []
    try:
        parts = urlsplit(proxy)
        password = parts.password
    except ValueError:
        return []
    if not password:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return [password, unquote(password), userinfo, unquote(userinfo)]


def auth_secrets(auth: Auth | None, client_cert: ClientCert | None, proxy: str | None) -> list[str]:
    """Every secret of an endpoint's connection settings, for masking."""
    found = auth.secrets() if auth is not None else []
    if client_cert is not None and client_cert.key_password:
        found.append(client_cert.key_password)
    return found + proxy_secrets(proxy)
