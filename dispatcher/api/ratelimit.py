"""The per-token rate limit (``api.rate_limit``): a token bucket in Redis shared by every API
process, so ``--workers 4`` and four hosts still give a token ``per_second`` on average and
``burst`` at once. One script run per request, which also reads the API tokens' generation (a
revoke raises it), so a revoked token is refused at the next request in every process.

Redis refusing is not the client's fault: the request goes unlimited (logged once per outage),
Redis is not asked again for :data:`SKIP_SECONDS`, and the tokens are re-read from the
database every few seconds instead.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

import redis

from .. import lua
from ..config.api_settings import RateLimit
from ..logs import log_line

BUCKET_PREFIX = "dispatcher:api:bucket:"
REDIS_TIMEOUT = 1.0
"""Seconds the API's Redis client waits for an answer: it runs on the event loop."""
SKIP_SECONDS = 5.0
"""After Redis failed to answer, the API goes without it this long before asking again."""
_TAKE = redis.Redis().register_script(lua.load(__package__, "token_bucket.lua"))
"""Takes a token or says how long to wait: see ``token_bucket.lua``. No connection is made here."""


@dataclass(frozen=True)
class Admission:
    """What the bucket said: whether the request may go, else the whole seconds to wait; and
    the tokens' generation (None when Redis did not answer)."""

    allowed: bool
    retry_after: int
    generation: str | None


def bucket_key(caller: str) -> str:
    """A token's bucket, by the token's name (hashed: a name is any text the operator chose)."""
    return BUCKET_PREFIX + hashlib.sha256(caller.encode("utf-8")).hexdigest()[:32]


class RateLimiter:
    """Takes one token from a caller's bucket per request; says so once when Redis is away."""

    def __init__(self, limit: RateLimit | None, generation_key: str) -> None:
        self.limit = limit
        self.generation_key = generation_key
        self._down = False
        self._down_at = float("-inf")
        self._lock = threading.Lock()

    def skipping(self) -> bool:
        """Whether Redis failed a moment ago (SKIP_SECONDS): go without it, don't wait on it."""
        return self._down and time.monotonic() - self._down_at < SKIP_SECONDS

    def admit(self, client: redis.Redis, caller: str) -> Admission:
        """One request by ``caller``: allowed, or the seconds until it would be."""
        if self.skipping():
            return Admission(True, 0, None)
        rate = self.limit.per_second if self.limit else 0
        burst = self.limit.burst if self.limit else 0
        try:
            allowed, wait_ms, generation = _TAKE(
                keys=[bucket_key(caller), self.generation_key], args=[rate, burst], client=client
            )
        except redis.RedisError as exc:
            self._said(down=True, error=f"{type(exc).__name__}: {exc}")
            return Admission(True, 0, None)
        self._said(down=False)
        text = generation.decode() if isinstance(generation, bytes) else str(generation)
        return Admission(bool(allowed), max(1, math.ceil(int(wait_ms) / 1000)) if not allowed else 0, text)

    def _said(self, *, down: bool, error: str = "") -> None:
        with self._lock:
            if down:
                self._down_at = time.monotonic()
            if down == self._down:
                return
            self._down = down
        if down:
            log_line(logging.WARNING, "api: redis unavailable; requests go without a rate limit", error=error)
        else:
            log_line(logging.INFO, "api: redis back; the rate limit applies again")
