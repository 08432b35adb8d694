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

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import redis
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..logs import log_line
from ..ops import api_tokens
from ..runtime import Runtime
from ..store.api_tokens import ApiToken
from .problems import ApiProblem
from .ratelimit import Admission, RateLimiter

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


STALE = object()
"""What :meth:`TokenCache.lookup` says when the tokens must be read again first."""


class TokenCache:
    """The active tokens by hash, as this process last read them."""

    def __init__(self) -> None:
        self._by_hash: dict[str, ApiToken] = {}
        self._generation: str | None = None
        self._loaded_at = float("-inf")
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def lookup(self, token_hash: str, generation: str | None) -> ApiToken | None | object:
        """The active token with ``token_hash``, None, or :data:`STALE` (read them again
        first: the generation moved, RELOAD_SECONDS passed, or an unknown token a second after
        the last read). Reads nothing."""
        now = time.monotonic()
        with self._lock:
            if generation != self._generation or now - self._loaded_at >= RELOAD_SECONDS:
                return STALE
            found = self._by_hash.get(token_hash)
            if found is None and now - self._loaded_at >= UNKNOWN_RELOAD_SECONDS:
                return STALE
            return found

    def reload(self, runtime: Runtime, generation: str | None) -> None:
        """Reads the active tokens from the database (a thread's work, not the event loop's)."""
        tokens = api_tokens.active_tokens(runtime)
        with self._lock:
            self._by_hash, self._generation, self._loaded_at = tokens, generation, time.monotonic()

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

    def __init__(self, runtime: Runtime, client: redis.Redis) -> None:
        self.runtime = runtime
        self.client = client
        self.tokens = TokenCache()
        self.limiter = RateLimiter(runtime.settings.api.rate_limit, api_tokens.GENERATION_KEY)

    def check(self, token: str, scope: str) -> Caller:
        """The caller of ``token`` if it may do ``scope`` now; else a 401, 429 or 403 (all of
        it in this thread: the tokens read from the database when stale)."""
        digest = api_tokens.token_hash(token)
        admission = self.limiter.admit(self.client, digest)
        found = self.tokens.lookup(digest, admission.generation)
        if found is STALE:
            self.tokens.reload(self.runtime, admission.generation)
            found = self.tokens.lookup(digest, admission.generation)
        caller = self.verdict(found, admission, scope)
        if self.tokens.touch_due(caller.name):
            self.touch(caller.name)
        return caller

    def verdict(self, found: object, admission: Admission, scope: str) -> Caller:
        """The caller, or the refusal: unknown or revoked 401, over the limit 429, scope 403."""
        if not isinstance(found, ApiToken):
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
        return Caller(found.name, frozenset(found.scopes))

    def touch(self, name: str) -> None:
        """Records a token's last use; a database error is logged, never the request's."""
        try:
            api_tokens.touch(self.runtime, [name])
        except SQLAlchemyError as exc:  # a last-used time is not worth refusing a request for
            log_line(logging.WARNING, "api: could not record a token's last use", error=type(exc).__name__)


async def authorize(request: Request, scope: str) -> Caller:
    """The request's caller, if its token may do ``scope`` (401, 403, 429 otherwise).

    The rate limit's script runs on the event loop (a tenth of a millisecond, cheaper than a
    thread hop; its Redis client gives up within :data:`~.ratelimit.REDIS_TIMEOUT`); reading the
    tokens from the database, when they changed or every :data:`RELOAD_SECONDS`, and writing a
    token's last use run in a thread."""
    gate: Gate = request.app.state.gate
    digest = api_tokens.token_hash(bearer(request))
    admission = gate.limiter.admit(gate.client, digest)
    found = gate.tokens.lookup(digest, admission.generation)
    if found is STALE:
        await run_in_threadpool(gate.tokens.reload, gate.runtime, admission.generation)
        found = gate.tokens.lookup(digest, admission.generation)
    caller = gate.verdict(found, admission, scope)
    if gate.tokens.touch_due(caller.name):
        asyncio.get_running_loop().run_in_executor(None, gate.touch, caller.name)
    return caller
