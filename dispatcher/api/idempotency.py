"""The ``Idempotency-Key`` header (draft-ietf-httpapi-idempotency-key-header) on
``POST /v1/events`` and ``/v1/events/batch``.

The key travels into ``dispatch()``'s own idempotency store (keyed hashes in the log, the insert
deciding a race), so a repeat with the same body within ``idempotency_ttl`` gets the first
dispatch's request ids and nothing is stored or sent; for a batch, item ``i`` uses the key
``<key>#<i>``. Beside it this module keeps, in Redis, a mark per key: *pending* while a request
with it runs, then *done* for ``idempotency_ttl`` with the answer it got (request ids and
endpoint names, no PHI), each with the digest of the request's body. A repeat gets that answer
again, whatever changed since (an endpoint added, a setting), and nothing is stored or sent. A
second request finding *pending* is refused with 409 (with the same body) or 422 (another
body), one finding *done* with another body 422 -- so a changed batch is refused too, not only a
changed event. A request that fails forgets its pending mark, so the client can try again.

The key is stored only as a keyed hash (it may name a patient). When Redis is away the marks
are skipped (logged): the log's own store still makes a repeat of one event return the first
ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from .. import lua
from ..logs import log_line
from ..store.sealing import Keyring
from .problems import ApiProblem, FieldError

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_CHARS = 250
"""A batch's items use ``<key>#<index>``, within ``dispatch()``'s 255 characters."""
PENDING_SECONDS = 120
"""A pending mark outlives a request that died without forgetting it by at most this long."""
MARK_PREFIX = "dispatcher:api:idempotency:"
_FORGET = redis.Redis().register_script(lua.load(__package__, "forget.lua"))


def header_key(headers: Mapping[str, str]) -> str | None:
    """The request's Idempotency-Key, or None; a 422 naming the header when unusable."""
    given = headers.get(HEADER.lower())
    if given is None:
        return None
    key = given.strip()
    if key.startswith('"') and key.endswith('"') and len(key) >= 2:
        key = key[1:-1]  # the draft's sf-string form
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise ApiProblem(
            422,
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable characters (a UUID is a good key)",
            errors=[FieldError(HEADER, f"must be 1 to {MAX_KEY_CHARS} printable characters")],
        )
    return key


def digest(route: str, body: Any) -> str:
    """What a repeat must match: the route and the body's JSON, keys sorted."""
    text = json.dumps([route, body], sort_keys=True, separators=(",", ":"))  # ASCII: any string hashes
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Mark:
    """A request's claim on its key while it runs (:func:`begin`)."""

    redis_key: str | None
    value: str
    digest: str
    answer: str | None = None
    """The first request's answer (its 202 body), when this request repeats it: send it again."""


def conflict() -> ApiProblem:
    return ApiProblem(
        422,
        f"this {HEADER} was used for a different request body within idempotency_ttl; nothing was "
        "dispatched: use a new key for a new request",
        errors=[FieldError(HEADER, "used for a different request body")],
    )


def _busy() -> ApiProblem:
    return ApiProblem(
        409,
        f"a request with this {HEADER} is still being processed: retry after it is answered",
        headers={"Retry-After": "1"},
    )


def begin(client: redis.Redis, keyring: Keyring, key: str, body_digest: str) -> Mark:
    """Marks ``key`` pending for this request, or refuses it: 409 while another request with it
    runs, 422 when it was used with another body; a repeat of a finished request gets its
    answer back (:attr:`Mark.answer`)."""
    redis_key = MARK_PREFIX + keyring.index("api-idempotency:" + key)
    value = f"pending:{body_digest}:{secrets.token_hex(8)}"
    try:
        found = None
        for _ in range(2):  # a mark that ends between the SET and the GET: try once more
            if client.set(redis_key, value, nx=True, ex=PENDING_SECONDS):
                return Mark(redis_key, value, body_digest)
            found = client.get(redis_key)
            if found is not None:
                break
    except redis.RedisError as exc:
        log_line(
            logging.WARNING, "api: redis unavailable; Idempotency-Key marks skipped", error=type(exc).__name__
        )
        return Mark(None, value, body_digest)
    text = found.decode() if isinstance(found, bytes) else str(found or "")
    state, _, rest = text.partition(":")
    if rest[: len(body_digest)] != body_digest:
        raise conflict() if found else _busy()
    if state != "done":
        raise _busy()
    return Mark(None, value, body_digest, rest[len(body_digest) + 1 :] or None)


def finish(client: redis.Redis, mark: Mark, ttl: float, answer: str | None) -> None:
    """Ends a request's mark: *done* with its ``answer`` for ``ttl`` seconds (the
    ``idempotency_ttl``) when it succeeded, else (None) forgotten, so the client may try again."""
    if mark.redis_key is None:
        return
    try:
        if answer is not None:
            client.set(mark.redis_key, f"done:{mark.digest}:{answer}", ex=max(1, int(ttl)))
        else:
            _FORGET(keys=[mark.redis_key], args=[mark.value], client=client)
    except redis.RedisError as exc:
        log_line(
            logging.WARNING,
            "api: redis unavailable; an Idempotency-Key mark was left",
            error=type(exc).__name__,
        )
