"""The console's settings, as values (``console:`` in the file): its users, sessions and the
single sign-on proxy it may trust.

Kept apart from :mod:`.settings` so the one section with passwords stays in one place. A secret
here (a password hash, the session secret) is :class:`Concealed`: its ``repr`` and its copy
(what ``dataclasses.asdict`` makes, so what ``dispatcher config check`` prints) are ``****``,
and only :meth:`Concealed.reveal` gives the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"
ROLES = (VIEWER, OPERATOR)
"""A viewer reads everything but PHI; an operator also re-sends, disables and reveals."""
ANY_NAME = "*"
"""In ``proxy_roles``: the role of a signed-in name not listed (no entry: such a name is refused)."""
MASK = "****"


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
    """Signs the session cookies; None: a random one per start (sessions end with the process)."""
    trusted_proxy: TrustedProxy | None = None
    proxy_roles: tuple[tuple[str, str], ...] = ()
    """(name, role) pairs; the name ``*`` gives the role of any other name."""

    def user(self, name: str) -> ConsoleUser | None:
        for user in self.users:
            if user.name == name:
                return user
        return None

    def proxy_role(self, name: str) -> str | None:
        """The role of a name the proxy signed in, or None when it may not enter."""
        roles = dict(self.proxy_roles)
        return roles.get(name, roles.get(ANY_NAME))

    def secrets(self) -> list[str]:
        """What the process log masks: the session secret and the password hashes."""
        texts = [user.password_hash.reveal() for user in self.users]
        return texts + ([self.session_secret.reveal()] if self.session_secret else [])
