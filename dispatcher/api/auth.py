"""Who may call: ``Authorization: Bearer <token>`` names an API token (``dispatcher api tokens
create``), whose scopes say what it may do; each request also takes one from the token's rate
limit bucket (:mod:`.ratelimit`).

Only a token's SHA-256 is stored, and this process keeps the active tokens by that hash,
re-read from the database when the generation in Redis moves (a create or a revoke raises it,
and it comes back with the rate limit's answer, so a revoked token is refused at its next
request), and at least every :data:`RELOAD_SECONDS` whatever Redis says. A token is never
logged or repeated in a refusal.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request

from ..logs import log_line
from ..ops import api_tokens
from ..runtime import Runtime
from ..store.api_tokens import ApiToken
from .problems import ApiProblem
from .ratelimit import RateLimiter

RELOAD_SECONDS = 5.0
"""The longest a process goes without re-reading the tokens (a revoke made while Redis was away
reaches every process within it)."""
UNKNOWN_RELOAD_SECONDS = 1.0
"""An unknown token makes a re-read at most this often (a token created a moment ago)."""
TOUCH_SECONDS = 60.0
"""A token's ``last_used_at`` is written at most this often per process."""
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dispatcher"'}


@dataclass(frozen=True)
class Caller:
    """The token a request came with: its name (the audit's actor) and its scopes."""

    name: str
    scopes: frozenset[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes


def bearer(request: Request) -> str:
    """The request's bearer token, or a 401 saying how to send one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiProblem(
            401,
            "send an API token as Authorization: Bearer <token> (dispatcher api tokens create makes one)",
            headers=CHALLENGE,
        )
    return token


class TokenCache:
    """The active tokens by hash, as this process last read them."""

    def __init__(self) -> None:
        self._by_hash: dict[str, ApiToken] = {}
        self._generation: str | None = None
        self._loaded_at = float("-inf")
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def find(self, runtime: Runtime, token_hash: str, generation: str | None) -> ApiToken | None:
        """The active token with ``token_hash``, re-reading first when stale."""
        now = time.monotonic()
        with self._lock:
            stale = generation != self._generation or now - self._loaded_at >= RELOAD_SECONDS
            found = None if stale else self._by_hash.get(token_hash)
            if found is None and not stale and now - self._loaded_at < UNKNOWN_RELOAD_SECONDS:
                return None
            if found is not None:
                return found
            self._by_hash = api_tokens.active_tokens(runtime)
            self._generation = generation
            self._loaded_at = now
            return self._by_hash.get(token_hash)

    def touch_due(self, name: str) -> bool:
        """Whether ``name``'s last use should be written now (at most every TOUCH_SECONDS)."""
        now = time.monotonic()
        with self._lock:
            if now - self._touched.get(name, float("-inf")) < TOUCH_SECONDS:
                return False
            self._touched[name] = now
            return True


class Gate:
    """The app's one check of who calls: token, rate limit, scope."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tokens = TokenCache()
        self.limiter = RateLimiter(runtime.settings.api.rate_limit, api_tokens.GENERATION_KEY)

    def check(self, token: str, scope: str) -> Caller:
        """The caller of ``token`` if it may do ``scope`` now; else a 401, 429 or 403."""
        digest = api_tokens.token_hash(token)
        admission = self.limiter.admit(self.runtime.redis, digest)
        found = self.tokens.find(self.runtime, digest, admission.generation)
        if found is None:
            raise ApiProblem(401, "the API token is unknown or revoked", headers=CHALLENGE)
        if not admission.allowed:
            raise ApiProblem(
                429,
                f"API token {found.name!r} is over api.rate_limit: retry after {admission.retry_after} s",
                headers={"Retry-After": str(admission.retry_after)},
            )
        if scope not in found.scopes:
            raise ApiProblem(
                403,
                f"API token {found.name!r} lacks the {scope!r} scope "
                f"(it has: {', '.join(found.scopes) or 'none'}): create a token with --scopes {scope}",
            )
        if self.tokens.touch_due(found.name):
            try:
                api_tokens.touch(self.runtime, [found.name])
            except SQLAlchemyError as exc:  # a last-used time is not worth refusing a request for
                log_line(
                    logging.WARNING, "api: could not record a token's last use", error=type(exc).__name__
                )
        return Caller(found.name, frozenset(found.scopes))


async def authorize(request: Request, scope: str) -> Caller:
    """The request's caller, if its token may do ``scope`` (401, 403, 429 otherwise).

    Checked on the event loop, not in a thread: the usual check is one Redis script run (about
    a tenth of a millisecond), cheaper than a thread hop; the tokens' database read happens only
    when they changed, or every :data:`RELOAD_SECONDS`."""
    gate: Gate = request.app.state.gate
    return gate.check(bearer(request), scope)
