"""One process at a time evaluates and sends the alerts: a Redis lock, ``SET key token NX PX
ttl``, released on finish by its holder alone (``release_lock.lua`` compares the token).

The lock expires on its own after :data:`TTL_SECONDS` (a holder that died holds it no longer);
a pass is bounded well within it (sends by their timeouts and a time budget), and a send row is
claimed in the database before it is tried, so even a pass that outlived the lock never sends
what another pass is sending.
"""

from __future__ import annotations

import secrets

import redis

from .. import lua

KEY = "dispatcher:alerts:lock"
TTL_SECONDS = 120
"""The lock's life: longer than a pass can take."""

_RELEASE = redis.Redis().register_script(lua.load(__package__, "release_lock.lua"))
"""Run by EVALSHA (sent once per Redis server); no connection is made here."""


def acquire(client: redis.Redis, ttl_seconds: float = TTL_SECONDS, key: str = KEY) -> str | None:
    """Takes the lock for ``ttl_seconds``: its token, or None while another process holds it."""
    token = secrets.token_hex(16)
    if client.set(key, token, nx=True, px=int(ttl_seconds * 1000)):
        return token
    return None


def release(client: redis.Redis, token: str, key: str = KEY) -> bool:
    """Gives the lock back if ``token`` still holds it; False when it had expired (and maybe been
    taken by another process, whose lock stays)."""
    return bool(_RELEASE(keys=[key], args=[token], client=client))
