"""The login throttle, in Redis and shared by every console process: at most
:data:`NAME_LIMIT` passwords for one name and :data:`ADDRESS_LIMIT` from one client address are
checked in any :data:`WINDOW_SECONDS`.

An attempt is counted *before* its password is checked, by one Lua script (``throttle.lua``),
so however many arrive at once no more than the limit are checked; the others are refused (429,
``Retry-After``), the right password among them. Every counted attempt counts, a successful one
too (the count is not reset by signing in): the limit is on passwords checked, whatever they
turn out to be. A refused attempt is not counted. The window slides: each counted attempt
leaves it ``WINDOW_SECONDS`` after it was made.
"""

from __future__ import annotations

import hashlib
import math
import secrets

import redis

from .. import lua

NAME_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW_SECONDS = 60
KEY_PREFIX = "dispatcher:console:login:"

_ADMIT = redis.Redis().register_script(lua.load(__package__, "throttle.lua"))
"""Counts an attempt or refuses it: see ``throttle.lua``. No connection is made here."""


def _key(kind: str, value: str) -> str:
    """A name or address typed by a client, as a key: hashed, so any text makes a short key."""
    return f"{KEY_PREFIX}{kind}:{hashlib.sha256(value.encode('utf-8', 'replace')).hexdigest()}"


def name_key(name: str) -> str:
    return _key("name", name)


def address_key(address: str) -> str:
    return _key("address", address)


def retry_after(wait_ms: float) -> int:
    """The whole seconds a client waits before its attempt may be counted (at least 1)."""
    return max(1, math.ceil(wait_ms / 1000))


def admit(client: redis.Redis, name: str, address: str, now: float) -> int:
    """Counts a sign-in attempt for ``name`` from ``address`` at ``now`` (seconds): 0 when it is
    counted and its password may be checked, else the seconds to wait (nothing counted)."""
    wait = _ADMIT(
        keys=[name_key(name), address_key(address)],
        args=[int(now * 1000), WINDOW_SECONDS * 1000, NAME_LIMIT, ADDRESS_LIMIT, secrets.token_hex(8)],
        client=client,
    )
    return retry_after(int(wait)) if int(wait) > 0 else 0
