"""OAuth2 tokens shared by every sender thread, worker process and host.

A token is looked for in three places, nearest first: this process's memory (no Redis round trip
while it is not due, so a busy worker pays nothing per delivery), then Redis (where another
process may have fetched it, sealed with the storage keys when set), then the token endpoint.

At most one fetch at a time per endpoint: the threads of a process take a lock per token key
first (so they do not all go to Redis), then the process takes a short-lived Redis lock (``SET NX
PX`` with a random value, released by compare-and-delete). A caller that finds the lock held uses
the token it has while that is not expired, or, with none, waits for the holder's token (polling
Redis every :data:`POLL_SECONDS`, at most ``wait_limit``), and fetches itself if the holder went
away without one.

Redis is a help, not a need: when it fails, each process keeps and fetches its own tokens.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache

import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from ..config.partner_settings import OAuth2Client
from .oauth2 import Token

KEY_PREFIX = "dispatcher:oauth2-token"
POLL_SECONDS = 0.05
"""How often a caller waiting for another process's fetch looks for its token."""
REDIS_AWAY_SECONDS = 5.0
"""After a Redis error, this process keeps and fetches its own tokens for this long without
asking Redis (each command to a Redis that is down may take seconds of the client's retries)."""

REFUSED_REMEMBERED = 8
"""How many tokens a partner refused this process remembers per endpoint, never to keep again."""

Fetch = Callable[[], Token]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(client: OAuth2Client) -> str:
    """What the token depends on, hashed: the token URL, client id, method, scope, audience,
    algorithm, key file and key id, so a changed setting never reuses a token fetched for the old
    one. The client secret is left out (a key name must not let anyone test guesses of it): a
    rotated secret's old token is used until it expires or the partner refuses it."""
    fields = (
        client.token_url,
        client.client_id,
        str(client.method),
        client.scope or "",
        client.audience or "",
        client.algorithm,
        client.private_key or "",
        client.key_id or "",
    )
    return _digest(*fields)[:32]


@lru_cache(maxsize=64)
def token_key(endpoint: str, client: OAuth2Client) -> str:
    """The Redis key of an endpoint's token."""
    return f"{KEY_PREFIX}:{endpoint}:{fingerprint(client)}"


def lock_key(key: str) -> str:
    """The Redis key of the fetch lock of the token kept at ``key``."""
    return f"{key}:lock"


class TokenCache:
    """The tokens of every OAuth2 endpoint, shared through Redis.

    Args:
        redis_client: where tokens and fetch locks are shared.
        seal, unseal: the storage keys' sealing, for the value kept in Redis.
        clock: epoch seconds (what a token's times are measured in).
        wait_limit: how long a caller with no token waits for another's fetch; also the Redis
            lock's lifetime, so a holder that died frees it by then.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        seal: Callable[[str], str] | None = None,
        unseal: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
        wait_limit: float = 30.0,
    ) -> None:
        self.redis = redis_client
        self.seal = seal
        self.unseal = unseal
        self.clock = clock
        self.wait_limit = wait_limit
        self._local: dict[str, Token] = {}
        self._refused: dict[str, deque[str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._redis_away_until = 0.0

    def token(self, endpoint: str, client: OAuth2Client, fetch: Fetch) -> Token:
        """A token for ``endpoint``: this process's while it is not due, else Redis's, else
        ``fetch()``'s (one fetch at a time per endpoint, everywhere).

        Raises:
            TokenError: ``fetch`` failed (nothing is sent to the partner).
        """
        key = token_key(endpoint, client)
        held = self._local.get(key)
        if held is not None and not held.due(self.clock()):
            return held
        lock = self._thread_lock(key)
        if not lock.acquire(blocking=False):
            if held is not None and not held.expired(self.clock()):
                return held  # another thread of this process is fetching its successor
            if not lock.acquire(timeout=self.wait_limit):
                return self._keep(key, fetch())  # that thread is stuck: never lose the attempt
        try:
            return self._shared(key, fetch)
        finally:
            lock.release()

    def refresh(self, endpoint: str, client: OAuth2Client, failed: Token, fetch: Fetch) -> Token:
        """A new token after a partner answered 401 to ``failed``. ``failed`` is forgotten here
        and in Redis only while it is still the one kept (compare-and-delete), so of many
        callers turned away with the same token only the first causes a fetch.

        Raises:
            TokenError: ``fetch`` failed.
        """
        key = token_key(endpoint, client)
        with self._guard:
            refused = self._refused.setdefault(key, deque(maxlen=REFUSED_REMEMBERED))
            if failed.access_token not in refused:
                refused.append(failed.access_token)
            held = self._local.get(key)
            if held is not None and held.access_token == failed.access_token:
                del self._local[key]
        if self._redis_usable():
            try:
                self._drop_shared(key, failed)
            except redis.RedisError:
                self._redis_failed()  # this process's copy is gone, which is all it can do
        return self.token(endpoint, client, fetch)

    # --- inside ----------------------------------------------------------------------------

    def _redis_usable(self) -> bool:
        return time.monotonic() >= self._redis_away_until

    def _redis_failed(self) -> None:
        self._redis_away_until = time.monotonic() + REDIS_AWAY_SECONDS

    def _thread_lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _keep(self, key: str, token: Token) -> Token:
        """Keeps ``token`` as this process's, unless a partner has refused it: a caller that
        read it from Redis just before a refresh dropped it must not put it back, or the
        refresh waiting for that caller's lock would be handed the refused token again."""
        with self._guard:
            if token.access_token not in self._refused.get(key, ()):
                self._local[key] = token
        return token

    def _shared(self, key: str, fetch: Fetch) -> Token:
        """Under this process's lock for ``key``: Redis's token, else one fetch."""
        held = self._local.get(key)
        if held is not None and not held.due(self.clock()):
            return held  # fetched by the thread this one waited for
        if self._redis_usable():
            try:
                return self._through_redis(key, held, fetch)
            except redis.RedisError:
                self._redis_failed()  # down or refusing: this process fetches for itself
        return self._keep(key, fetch())

    def _through_redis(self, key: str, held: Token | None, fetch: Fetch) -> Token:
        """Redis's token when it is not due; else the fetch lock and one fetch; else the token
        still usable; else a wait for the lock holder's token.

        Raises:
            redis.RedisError: before any fetch was made (after one, Redis errors are ignored).
        """
        shared = self._read(key)
        now = self.clock()
        if shared is not None and not shared.due(now):
            return self._keep(key, shared)
        lock = Lock(self.redis, lock_key(key), timeout=self.wait_limit, blocking=False)
        if lock.acquire(blocking=False):
            return self._fetch_holding(key, lock, fetch)
        usable = [t for t in (shared, held) if t is not None and not t.expired(now)]
        if usable:
            return self._keep(key, max(usable, key=lambda t: t.expires_at))
        return self._wait(key, lock, fetch)

    def _fetch_holding(self, key: str, lock: Lock, fetch: Fetch) -> Token:
        """Holding the Redis lock: the token another process stored meanwhile, else a fetch."""
        try:
            shared = self._read(key)
            if shared is not None and not shared.due(self.clock()):
                return self._keep(key, shared)
            token = fetch()
            self._store(key, token)
            return self._keep(key, token)
        finally:
            try:
                lock.release()
            except LockNotOwnedError:
                pass  # it expired during the fetch (another may hold it now)
            except redis.RedisError:
                self._redis_failed()  # Redis went away: the lock expires by itself

    def _wait(self, key: str, lock: Lock, fetch: Fetch) -> Token:
        """Waits for the lock holder's token; takes the lock if the holder left without one;
        fetches anyway after ``wait_limit``."""
        until = time.monotonic() + self.wait_limit
        while time.monotonic() < until:
            time.sleep(POLL_SECONDS)  # waiting for a fetch in progress, not a retry
            shared = self._read(key)
            if shared is not None and not shared.due(self.clock()):
                return self._keep(key, shared)
            if lock.acquire(blocking=False):
                return self._fetch_holding(key, lock, fetch)
        token = fetch()
        self._store(key, token)
        return self._keep(key, token)

    def _read(self, key: str) -> Token | None:
        """The token kept in Redis, or None (none, or a value this process cannot read).

        Raises:
            redis.RedisError: Redis did not answer.
        """
        return self._parse(self.redis.get(key))

    def _parse(self, raw: object) -> Token | None:
        if not isinstance(raw, bytes | str):
            return None
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            document = json.loads(self.unseal(text) if self.unseal is not None else text)
            access_token = document["access_token"]
            if not isinstance(access_token, str) or not access_token:
                return None
            return Token(access_token, float(document["expires_at"]), float(document["refresh_at"]))
        except Exception:  # noqa: BLE001 - sealed under another key, or not ours: no token
            return None

    def _store(self, key: str, token: Token) -> None:
        """Keeps ``token`` in Redis until it expires (best effort: a failure loses nothing)."""
        ttl_ms = int((token.expires_at - self.clock()) * 1000)
        if ttl_ms <= 0:
            return
        fields = {"access_token": token.access_token, "expires_at": token.expires_at}
        value = json.dumps(fields | {"refresh_at": token.refresh_at})
        if self.seal is not None:
            value = self.seal(value)
        try:
            self.redis.set(key, value, px=ttl_ms)
        except redis.RedisError:
            self._redis_failed()  # the token is kept here; other processes fetch their own

    def _drop_shared(self, key: str, failed: Token) -> None:
        """Deletes Redis's token if it is still ``failed``: read under WATCH, so a token stored
        between the read and the delete stays (the transaction is then read again)."""

        def drop_if_failed(pipe: redis.client.Pipeline) -> None:
            shared = self._parse(pipe.get(key))
            if shared is not None and shared.access_token == failed.access_token:
                pipe.multi()
                pipe.delete(key)

        self.redis.transaction(drop_if_failed, key)
