"""The file's partner-connection sections: an endpoint's ``headers``, ``auth``,
``tls_client_cert`` and ``proxy``, and ``delivery.no_proxy``. Each becomes a value of
:mod:`.partner_settings`. A mistake is one problem naming the setting; a secret is never quoted.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from . import fields as f
from . import partner_settings as values
from .checks import Problem, shown, shown_url, url_text
from .sections import Section, setting

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP field name (RFC 9110 5.1: a token)."""
_HOST_PATTERN = re.compile(r"\*|\.?[A-Za-z0-9_]([A-Za-z0-9_\-.]*[A-Za-z0-9_])?(:\d{1,5})?")


def header_name(name: str) -> str:
    """A name ``headers:`` may set: a token, and none the sender writes itself."""
    if not _TOKEN.fullmatch(name):
        raise Problem(f"{shown(name)} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
    lowered = name.lower()
    if lowered == "authorization":
        raise Problem("Authorization may not be set here: use the endpoint's auth (basic, bearer or oauth2)")
    if lowered in values.FORBIDDEN_HEADERS or lowered.startswith("webhook-"):
        raise Problem(f"{name} may not be set here: the sender writes it itself")
    return name


def proxy_url(url: str) -> str:
    """An HTTP proxy's URL (``http://`` or ``https://``, a host and a port; a user and password
    allowed, never quoted), or ``none``."""
    if url == values.NO_PROXY:
        return url
    url_text(url)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise Problem(f"is not a valid proxy URL: {shown_url(url)}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise Problem(f"must be an http:// or https:// proxy URL with a host, or none; got {shown_url(url)}")
    if port is None:
        raise Problem(f"must name the proxy's port (e.g. http://proxy.internal:3128), got {shown_url(url)}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise Problem(f"must be a proxy's address only (no path or query), got {shown_url(url)}")
    return url


def no_proxy_entry(entry: str) -> str:
    """A ``no_proxy`` entry: a host, ``.domain`` (its subdomains), ``*``, an IP address or a
    network (CIDR), each optionally with ``:port`` (hosts only)."""
    try:
        ipaddress.ip_network(entry.strip("[]"), strict=False)
        return entry
    except ValueError:
        pass
    if not _HOST_PATTERN.fullmatch(entry):
        raise Problem(f"{shown(entry)} is not a host, .domain, IP address, network or *")
    return entry


def oauth2_method(name: str) -> str:
    methods = [method.value for method in values.OAuth2Method]
    if name not in methods:
        raise Problem(f"must be one of {', '.join(methods)}, got {shown(name)}")
    return name


Method = Annotated[
    f.Text, AfterValidator(oauth2_method), f.Hint(enum=[method.value for method in values.OAuth2Method])
]
HeaderName = Annotated[f.Text, AfterValidator(header_name)]
ProxyUrl = Annotated[
    f.Text,
    AfterValidator(proxy_url),
    f.Hint(examples=["http://proxy.clinic.internal:3128", "none"]),
]
NoProxyEntry = Annotated[f.Text, AfterValidator(no_proxy_entry)]
Secret = Annotated[f.Text, AfterValidator(f.checks.not_blank)]
TokenUrl = f.EndpointUrl


class BasicFile(Section):
    """HTTP Basic: ``Authorization: Basic base64(username:password)``."""

    model_config = ConfigDict(title="basic")

    username: f.Required = Field(description="The user name (no colon).")
    password: Secret = Field(description="The password; ${ENV_VAR} keeps it out of the file.")

    @model_validator(mode="after")
    def _no_colon(self) -> Self:
        if ":" in self.username:
            raise Problem(
                "must not contain a colon (HTTP Basic separates the password with one)", at=("username",)
            )
        return self


class OAuth2File(Section):
    """The OAuth2 client credentials grant (RFC 6749 4.4): a token fetched from token_url, sent as
    ``Authorization: Bearer``, cached by every worker and refreshed before it expires."""

    model_config = ConfigDict(title="oauth2")

    token_url: TokenUrl = Field(description="Required: the token endpoint (https:// in production).")
    client_id: f.Required = Field(description="Required: the client's id (iss and sub of a JWT assertion).")
    method: Method = setting(
        values.OAuth2Method.CLIENT_SECRET_BASIC.value,
        "client_secret_basic (HTTP Basic), client_secret_post (in the form) or private_key_jwt "
        "(RFC 7523, SMART Backend Services).",
    )
    client_secret: f.Omittable[Secret] = setting(None, "The two client_secret methods: the secret.")
    scope: f.Omittable[f.Required] = setting(None, "Sent as scope, e.g. system/*.write.")
    audience: f.Omittable[f.Required] = setting(None, "Sent as audience, when the server wants one.")
    private_key: f.Omittable[f.CaBundle] = setting(None, "private_key_jwt: the RSA or EC private key (PEM).")
    key_id: f.Omittable[f.Required] = setting(None, "private_key_jwt: the JWT's kid.")
    algorithm: str = setting("RS384", "private_key_jwt: RS384 (RSA) or ES384 (EC P-384).")

    @model_validator(mode="after")
    def _method_needs(self) -> Self:
        if self.algorithm not in values.JWT_ALGORITHMS:
            raise Problem(f"must be RS384 or ES384, got {shown(self.algorithm)}", at=("algorithm",))
        if self.method == values.OAuth2Method.PRIVATE_KEY_JWT:
            for name in ("private_key", "key_id"):
                if getattr(self, name) is None:
                    raise Problem("is required with method: private_key_jwt", at=(name,))
            if self.client_secret is not None:
                raise Problem("is not used with method: private_key_jwt; remove it", at=("client_secret",))
            return self
        if self.client_secret is None:
            raise Problem(f"is required with method: {self.method}", at=("client_secret",))
        for name in ("private_key", "key_id"):
            if getattr(self, name) is not None:
                raise Problem("is used only with method: private_key_jwt; remove it", at=(name,))
        return self

    def to_settings(self) -> values.OAuth2Client:
        return values.OAuth2Client(
            token_url=self.token_url,
            client_id=self.client_id,
            method=values.OAuth2Method(self.method),
            client_secret=self.client_secret,
            scope=self.scope,
            audience=self.audience,
            private_key=self.private_key,
            key_id=self.key_id,
            algorithm=self.algorithm,
        )


class AuthFile(Section):
    """The Authorization the sender adds (X-Webhook-Key is sent as well): one of basic, bearer
    or oauth2."""

    model_config = ConfigDict(title="auth")

    basic: f.Omittable[BasicFile] = setting(None, "{username, password}: HTTP Basic.")
    bearer: f.Omittable[Secret] = setting(None, "A static token: Authorization: Bearer <token>.")
    oauth2: f.Omittable[OAuth2File] = setting(None, "The client credentials grant.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("basic", "bearer", "oauth2") if getattr(self, name) is not None]
        if len(given) != 1:
            found = f"got {' and '.join(given)}" if given else "got none"
            raise Problem(f"must set exactly one of basic, bearer or oauth2, {found}")
        return self

    def to_settings(self) -> values.Auth:
        if self.basic is not None:
            return values.BasicAuth(self.basic.username, self.basic.password)
        if self.bearer is not None:
            return values.BearerAuth(self.bearer)
        assert self.oauth2 is not None  # _exactly_one
        return self.oauth2.to_settings()


class ClientCertFile(Section):
    """Mutual TLS: the client certificate shown to the partner (and its token endpoint)."""

    model_config = ConfigDict(title="tls_client_cert")

    cert: f.CaBundle = Field(description="Required: the certificate (PEM), its chain after it.")
    key: f.Omittable[f.CaBundle] = setting(None, "Its private key (PEM); leave out when in the cert file.")
    key_password: f.Omittable[Secret] = setting(None, "The key's passphrase when it is encrypted.")

    def to_settings(self) -> values.ClientCert:
        return values.ClientCert(self.cert, self.key, self.key_password)


def unique_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names are case-insensitive: two spellings of one name are one mistake."""
    seen: dict[str, str] = {}
    for name in headers:
        if name.lower() in seen:
            raise Problem(f"{seen[name.lower()]} and {name} are the same header; keep one")
        seen[name.lower()] = name
    return headers


Headers = Annotated[dict[HeaderName, f.HeaderKey], AfterValidator(unique_headers)]
