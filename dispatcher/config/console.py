"""The ``console:`` section of the file, as pydantic models: who may sign in to the operator
console, for how long, and which single sign-on proxy it trusts.

A password hash and the session secret are never quoted in an error (their checks say what is
wrong without the value) and become :class:`~.console_settings.Concealed` values.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    WithJsonSchema,
    model_validator,
)

from . import fields as f
from .checks import Problem, shown
from .console_settings import (
    ROLES,
    Concealed,
    ConsoleSettings,
    ConsoleUser,
    TrustedProxy,
    host_name,
)
from .sections import Section

MAX_SESSION_HOURS = 24 * 30
MIN_SESSION_SECRET_CHARS = 32
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_DEFAULTS = ConsoleSettings()


def _password_hash(value: Any) -> Concealed:
    """An argon2id hash as ``dispatcher console hash-password`` prints it; never quoted."""
    if not isinstance(value, str):
        raise Problem(f"expected a string, got {type(value).__name__}")
    if not value.startswith("$argon2id$") or value.count("$") < 5:
        raise Problem("must be an argon2id hash ($argon2id$...): run `dispatcher console hash-password`")
    return Concealed(value)


def _session_secret(value: Any) -> Concealed:
    if not isinstance(value, str):
        raise Problem(f"expected a string, got {type(value).__name__}")
    if len(value) < MIN_SESSION_SECRET_CHARS or not value.isprintable():
        raise Problem(
            f"must be at least {MIN_SESSION_SECRET_CHARS} printable characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))' prints one)"
        )
    return Concealed(value)


def _role(value: str) -> str:
    if value not in ROLES:
        raise Problem(f"must be one of {', '.join(ROLES)}, got {shown(value)}")
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.fullmatch(value):
        raise Problem(f"must be an HTTP header name, got {shown(value)}")
    return value


def _allowed_host(value: str) -> str:
    name = host_name(value)
    if name is None:
        raise Problem(
            f"must be a host name or IP address without a port (console.example.org, 10.0.0.5, ::1), "
            f"got {shown(value)}"
        )
    return name


def _public_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or host_name(parts.hostname or "") is None
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "#" in value
    ):
        raise Problem(
            "must be the console's absolute address, http(s)://host[:port] with no path, query or "
            f"user (https://console.example.org), got {shown(value)}"
        )
    del port  # read only to refuse a bad one
    return f"{parts.scheme}://{parts.netloc.lower()}"


PasswordHash = Annotated[
    Concealed,
    PlainValidator(_password_hash),
    WithJsonSchema({"type": "string", "pattern": r"^\$argon2id\$"}),
]
SessionSecret = Annotated[
    Concealed,
    PlainValidator(_session_secret),
    WithJsonSchema({"type": "string", "minLength": MIN_SESSION_SECRET_CHARS}),
]
Role = Annotated[f.Text, AfterValidator(_role), WithJsonSchema({"type": "string", "enum": list(ROLES)})]
HeaderName = Annotated[f.Required, AfterValidator(_header_name)]
AllowedHost = Annotated[
    f.Required, AfterValidator(_allowed_host), WithJsonSchema({"type": "string", "minLength": 1})
]
PublicUrl = Annotated[
    f.Required,
    AfterValidator(_public_url),
    WithJsonSchema({"type": "string", "format": "uri", "pattern": "^https?://[^/?#]+/?$"}),
]
SessionHours = Annotated[int, Strict(), f.Range(1, MAX_SESSION_HOURS, unit="hour")]


class ConsoleSection(Section):
    """A mapping of the console section: a :class:`.sections.Section` (its own keys, strict,
    frozen, each known by its spelling in the file: ``from``)."""


class ConsoleUserFile(ConsoleSection):
    """One person who signs in with a password."""

    model_config = ConfigDict(title="console user")

    name: f.Required = Field(description="Required, unique: the name signed in with, and the audit's actor.")
    password_hash: PasswordHash = Field(description="Required: `dispatcher console hash-password` prints it.")
    role: Role = Field(default="viewer", description="viewer (reads all but PHI) or operator (also acts).")


class TrustedProxyFile(ConsoleSection):
    """A single sign-on proxy in front of the console."""

    model_config = ConfigDict(title="console trusted_proxy")

    header: HeaderName = Field(
        default="X-Forwarded-User", description="The header naming the signed-in user."
    )
    networks: Annotated[list[f.Network], f.NotEmpty("list the proxy's addresses")] = Field(
        alias="from",
        description="Required: the proxy's addresses (CIDRs); the header is believed only from them.",
    )


class ConsoleFile(ConsoleSection):
    """The operator console (`dispatcher console`): who signs in, and how."""

    model_config = ConfigDict(title="console")

    users: list[ConsoleUserFile] = Field(
        default=[], description="People who sign in with a password; none by default."
    )
    session_hours: SessionHours = Field(
        default=_DEFAULTS.session_hours, description="A session ends this many hours after sign-in."
    )
    https: f.Flag = Field(
        default=_DEFAULTS.https, description="Served over https (by a TLS proxy): cookies are Secure."
    )
    session_secret: f.Omittable[SessionSecret] = Field(
        default=None,
        description="Keys the sign-in form's CSRF token and patient links (32+ characters); "
        "a random one per start when absent.",
    )
    trusted_proxy: f.Omittable[TrustedProxyFile] = Field(
        default=None, description="Single sign-on: believe this header from these addresses; off unless set."
    )
    proxy_roles: dict[f.Required, Role] = Field(
        default={}, description="With trusted_proxy: the role of each signed-in name ('*': anyone else)."
    )

    allowed_hosts: f.Omittable[Annotated[list[AllowedHost], f.NotEmpty("list the console's host names")]] = (
        Field(
            default=None,
            description="The host names a request's Host header may name (no port); default: the listen "
            "address, localhost, 127.0.0.1 and ::1. Any other Host is refused (400).",
        )
    )
    public_url: f.Omittable[PublicUrl] = Field(
        default=None,
        description="The console's address as browsers reach it (https://console.example.org): its host "
        "is allowed, and a redirect that must be absolute starts with it; otherwise redirects are paths.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for i, user in enumerate(self.users):
            if user.name in seen:
                raise Problem(f"duplicate user name {shown(user.name)}", at=("users", i, "name"))
            seen.add(user.name)
        return self

    def to_settings(self) -> ConsoleSettings:
        proxy = self.trusted_proxy
        return ConsoleSettings(
            users=tuple(ConsoleUser(u.name, u.password_hash, u.role) for u in self.users),
            session_hours=self.session_hours,
            https=self.https,
            session_secret=self.session_secret,
            trusted_proxy=TrustedProxy(proxy.header, tuple(proxy.networks)) if proxy else None,
            proxy_roles=tuple(sorted(self.proxy_roles.items())),
            allowed_hosts=tuple(dict.fromkeys(self.allowed_hosts or ())),
            public_url=self.public_url,
        )
