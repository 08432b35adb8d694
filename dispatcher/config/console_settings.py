"""The console's settings, as values (``console:`` in the file): its users, sessions and the
single sign-on proxy it may trust, and the host names it answers to.

Kept apart from :mod:`.settings` so the one section with passwords stays in one place. A secret
here (a password hash, the session secret) is :class:`Concealed`: its ``repr`` and its copy
(what ``dataclasses.asdict`` makes) are ``****``, and only :meth:`Concealed.reveal` gives the
text (``dispatcher config check`` prints ``****`` for each: :mod:`.document`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

VIEWER = "viewer"
OPERATOR = "operator"
ROLES = (VIEWER, OPERATOR)
"""A viewer reads everything but PHI; an operator also re-sends, disables and reveals."""
ANY_NAME = "*"
"""In ``proxy_roles``: the role of a signed-in name not listed (no entry: such a name is refused)."""
MASK = "****"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
"""The host names the console always answers to when ``allowed_hosts`` is not set (with the
address it listens on)."""
_HOST_LABELS = re.compile(
    r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*"
)


def host_name(text: str) -> str | None:
    """``text`` as a host name to compare (lower case, no brackets, no final dot), or None when
    it is neither a DNS name nor an IP address. No port: ``example.org:443`` is None."""
    name = text.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
        try:
            return str(ipaddress.IPv6Address(name))
        except ValueError:
            return None
    name = name.removesuffix(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    return name if name.isascii() and _HOST_LABELS.fullmatch(name) else None


class Concealed:
    """A secret setting: shown (repr, str, copies) as ``****``; :meth:`reveal` gives the text."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def reveal(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __deepcopy__(self, memo: dict[int, Any]) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Concealed) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    password_hash: Concealed
    role: str = VIEWER


@dataclass(frozen=True)
class TrustedProxy:
    """Single sign-on in front of the console: ``header`` names the signed-in user, believed
    only from a peer in ``networks``."""

    header: str = "X-Forwarded-User"
    networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsoleSettings:
    users: tuple[ConsoleUser, ...] = ()
    session_hours: int = 8
    https: bool = False
    session_secret: Concealed | None = None
    """Keys the sign-in form's CSRF token and the deliveries page's patient tokens (sessions are
    kept in Redis); None: a random one per start (an open sign-in form or a patient link made
    before a restart is refused once; sessions go on)."""
    trusted_proxy: TrustedProxy | None = None
    proxy_roles: tuple[tuple[str, str], ...] = ()
    """(name, role) pairs; the name ``*`` gives the role of any other name."""
    allowed_hosts: tuple[str, ...] = ()
    """The host names (as :func:`host_name` writes them) a request's Host may name; empty: the
    listen address and :data:`LOCAL_HOSTS`."""
    public_url: str | None = None
    """The console's address as browsers reach it (``https://console.example.org``): its host is
    allowed, and a redirect that must be absolute starts with it. None: redirects are paths."""

    def user(self, name: str) -> ConsoleUser | None:
        for user in self.users:
            if user.name == name:
                return user
        return None

    def proxy_role(self, name: str) -> str | None:
        """The role of a name the proxy signed in, or None when it may not enter."""
        roles = dict(self.proxy_roles)
        return roles.get(name, roles.get(ANY_NAME))

    def hosts(self, listen_host: str | None = None) -> frozenset[str]:
        """The host names a request may name in its Host header."""
        names = set(self.allowed_hosts or LOCAL_HOSTS)
        if not self.allowed_hosts and listen_host:
            names.add(host_name(listen_host) or listen_host)
        if self.public_url:
            public = host_name(urlsplit(self.public_url).hostname or "")
            names.update([public] if public else [])
        return frozenset(names)

    def secrets(self) -> list[str]:
        """What the process log masks: the session secret and the password hashes."""
        texts = [user.password_hash.reveal() for user in self.users]
        return texts + ([self.session_secret.reveal()] if self.session_secret else [])
