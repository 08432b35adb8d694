"""The HTTP API's tokens: making one, revoking one, listing them, and what the API reads to
authorize a request (``dispatcher api tokens create|list|revoke``; no click here).

A token is :data:`TOKEN_PREFIX` (so a leaked one is recognised) and 256 random bits; only its
SHA-256 is stored (:mod:`dispatcher.store.api_tokens`), and the token is shown once, by whoever
made it. A token has scopes (:data:`SCOPES`): ``send`` dispatches, ``read`` reads deliveries and
endpoints, ``operate`` acts on them, ``read:payload`` also reads payloads and response bodies.

:class:`CreateToken` and :class:`RevokeToken` are doors (:mod:`.door`): planned, run and audited
under their name and scopes, never the token. After the write each raises a counter in Redis
(:data:`GENERATION_KEY`) so that every API process reads the tokens again at once; when Redis
does not answer that is said in the process log and nothing more (the API reads the tokens
again every few seconds anyway).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis

from ..errors import DispatcherError
from ..logs import log_line
from ..runtime import Runtime
from ..store import api_tokens as stored
from ..store.api_tokens import ApiToken, ApiTokenExists
from ..times import format_utc, utcnow
from ..vocabulary import AuditAction
from .bulk import Progress
from .door import Door, Plan

__all__ = [
    "GENERATION_KEY",
    "SCOPES",
    "TOKEN_PREFIX",
    "ApiToken",
    "ApiTokenExists",
    "CreateToken",
    "InvalidApiToken",
    "RevokeToken",
    "TokenCreated",
    "TokenRevoked",
    "UnknownApiToken",
    "active_tokens",
    "check_name",
    "generation",
    "new_token",
    "parse_scopes",
    "token_hash",
    "token_list",
    "touch",
]

SCOPES = ("send", "read", "operate", "read:payload")
"""Every scope, in the order a token's are stored and shown."""
TOKEN_PREFIX = "dsp_"
TOKEN_BYTES = 32
"""256 random bits, after the prefix."""
GENERATION_KEY = "dispatcher:api:tokens:generation"
"""Raised by every create and revoke: an API process that sees it change reads the tokens again."""
MAX_NAME_CHARS = 64
_NAME = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_NAME_CHARS}}}")
_SHOWN_CHARS = 80


class InvalidApiToken(DispatcherError, ValueError):
    """A token's name or scopes as given cannot be used."""


class UnknownApiToken(DispatcherError, LookupError):
    """No token has that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no API token named {_shown(name)}; dispatcher api tokens list shows them")


def _shown(text: str) -> str:
    """``text`` quoted, control characters escaped, cut short."""
    return repr(text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "...")


def new_token() -> str:
    """A fresh token: the prefix and 256 random bits (URL-safe base64)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The SHA-256 of the whole token, as hex: what is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    """``name`` when it is 1 to 64 letters, digits, ``.``, ``_`` or ``-``.

    Raises:
        InvalidApiToken: any other name.
    """
    if not _NAME.fullmatch(name):
        raise InvalidApiToken(
            f"API token name {_shown(name)}: use 1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-'"
        )
    return name


def _canonical(scopes: Iterable[str] | str) -> tuple[str, ...]:
    """The scopes given (a comma-separated text, or each apart) in :data:`SCOPES` order, each once."""
    given = [scope.strip() for scope in (scopes.split(",") if isinstance(scopes, str) else scopes)]
    for scope in given:
        if scope and scope not in SCOPES:
            raise InvalidApiToken(f"unknown scope {_shown(scope)}; the scopes are {', '.join(SCOPES)}")
    chosen = tuple(scope for scope in SCOPES if scope in given)
    if not chosen:
        raise InvalidApiToken(f"no scope given; name one or more of {', '.join(SCOPES)}, comma-separated")
    if "read:payload" in chosen and "read" not in chosen:
        raise InvalidApiToken(
            "scope read:payload widens read, which it needs too: give --scopes read,read:payload"
        )
    return chosen


def parse_scopes(text: str) -> tuple[str, ...]:
    """The scopes named in ``text`` (comma-separated, spaces allowed), in :data:`SCOPES` order,
    each once.

    Raises:
        InvalidApiToken: a scope that is not one of :data:`SCOPES`, none at all, or
            ``read:payload`` without ``read``.
    """
    return _canonical(text)


def _raise_generation(runtime: Runtime) -> None:
    """Tells every API process to read the tokens again; a Redis error is logged and ignored."""
    try:
        runtime.redis.incr(GENERATION_KEY)
    except redis.RedisError as exc:
        log_line(
            logging.WARNING,
            "API tokens changed but Redis did not answer; API processes see it at their next read",
            error=f"{type(exc).__name__}: {exc}",
        )


def generation(runtime: Runtime) -> int:
    """The tokens' generation in Redis (0 before any change): when it changes, read them again."""
    value = runtime.redis.get(GENERATION_KEY)
    return int(value) if value is not None else 0


@dataclass(frozen=True)
class TokenCreated:
    """What :class:`CreateToken` did: the token, to be shown once (never in its counts, its
    audit row or its ``repr``)."""

    name: str
    scopes: tuple[str, ...]
    token: str = field(repr=False)

    def counts(self) -> Mapping[str, Any]:
        return {"created": 1}


@dataclass(frozen=True)
class CreateToken(Door[TokenCreated]):
    """Makes a token named ``name`` with ``scopes``: a bad name or scope, or a name in use, is
    one error from the plan with nothing written (and from the run, should another take the
    name meanwhile)."""

    action: ClassVar[AuditAction] = AuditAction.API_TOKENS_CREATE
    name: str
    scopes: Sequence[str]
    """Scope names, or one comma-separated text of them."""

    def plan(self, runtime: Runtime) -> Plan:
        name, scopes = check_name(self.name), _canonical(self.scopes)
        if stored.named(runtime.engine, name) is not None:
            raise ApiTokenExists(name)
        return Plan(
            self.action,
            None,
            f"Create API token {name} with scopes {', '.join(scopes)}; the token is shown once.",
            {"name": name, "scopes": list(scopes)},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> TokenCreated:
        name, scopes = plan.selection["name"], tuple(plan.selection["scopes"])
        token = new_token()
        stored.create(runtime.engine, name, token_hash(token), scopes, utcnow())
        _raise_generation(runtime)
        return TokenCreated(name, scopes, token)


@dataclass(frozen=True)
class TokenRevoked:
    """What :class:`RevokeToken` did (``revoked`` False: someone revoked it meanwhile)."""

    name: str
    revoked: bool = True

    def counts(self) -> Mapping[str, Any]:
        return {"revoked": int(self.revoked)}


@dataclass(frozen=True)
class RevokeToken(Door[TokenRevoked]):
    """Deletes the token named ``name``: a request carrying it is refused from the API's next
    read of the tokens (at once, when Redis answers)."""

    action: ClassVar[AuditAction] = AuditAction.API_TOKENS_REVOKE
    name: str

    def plan(self, runtime: Runtime) -> Plan:
        if stored.named(runtime.engine, self.name) is None:
            raise UnknownApiToken(self.name)
        return Plan(
            self.action,
            None,
            f"Revoke API token {self.name}: requests carrying it are refused from now on.",
            {"name": self.name},
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        return False

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> TokenRevoked:
        revoked = stored.revoke(runtime.engine, self.name)
        _raise_generation(runtime)
        return TokenRevoked(self.name, revoked)


def token_list(runtime: Runtime) -> list[dict[str, Any]]:
    """Every token by name, as ``tokens list --json`` prints it: name, scopes, and when it was
    made and last used (UTC text; None: never used). No hash, no token."""
    return [
        {
            "name": token.name,
            "scopes": list(token.scopes),
            "created_at": format_utc(token.created_at),
            "last_used_at": format_utc(token.last_used_at) if token.last_used_at else None,
        }
        for token in stored.listed(runtime.engine)
    ]


def active_tokens(runtime: Runtime) -> dict[str, ApiToken]:
    """Every token, keyed by the hash of its token (:func:`token_hash`): what the API checks a
    request's ``Authorization`` against."""
    return stored.by_hash(runtime.engine)


def touch(runtime: Runtime, names: Iterable[str]) -> int:
    """Records that the tokens named were used now; returns how many were recorded."""
    return stored.touch(runtime.engine, names, utcnow())
