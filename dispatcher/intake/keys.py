"""The keys a caller may give a dispatch: an idempotency key (a repeat sends nothing) and an
ordering key (the order an ordered endpoint receives one key's deliveries in), checked and put
in the form the log stores them in -- keyed hashes, never as given: either may name a patient."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import Endpoint
from ..errors import IdempotencyConflict, InvalidDispatchArgument
from ..store.idempotency import IdempotencyKey
from ..store.ordering import lock_id
from ..store.sealing import Keyring
from .request import DEFAULT_DISPATCHED_BY

MAX_KEY_CHARS = 255


def check_key(name: str, value: object) -> str:
    """A caller's key: text of 1 to :data:`MAX_KEY_CHARS` characters.

    Raises:
        InvalidDispatchArgument: naming ``name`` (``idempotency_key``, ``ordering_keys[2]``...).
    """
    if not isinstance(value, str):
        raise InvalidDispatchArgument(name, f"expected a string, got {type(value).__name__}")
    if not value or len(value) > MAX_KEY_CHARS:
        raise InvalidDispatchArgument(name, f"must be 1 to {MAX_KEY_CHARS} characters, got {len(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidDispatchArgument(
            name, "must be text UTF-8 can encode (it holds a lone surrogate)"
        ) from None
    return value


def checked_keys(name: str, keys: Sequence[str | None] | None, count: int) -> list[str | None]:
    """One key (or None) per item, each checked; ``keys`` None means none at all."""
    if keys is None:
        return [None] * count
    if isinstance(keys, str) or len(keys) != count:
        raise InvalidDispatchArgument(name, f"expected a list of {count} keys (or None), one per item")
    return [None if key is None else check_key(f"{name}[{i}]", key) for i, key in enumerate(keys)]


def idempotency_for(
    keyring: Keyring,
    event: str,
    data: Mapping[str, Any],
    given: str,
    *,
    endpoints: Sequence[str] | None = None,
    ordering_key: str | None = None,
    dispatched_by: str = DEFAULT_DISPATCHED_BY,
) -> IdempotencyKey:
    """The stored form of an item's idempotency key, with the fingerprint of everything that
    changes what is sent or to whom: the event, its data, the endpoints asked for (None: every
    subscriber), the ordering key given and ``dispatched_by``. A repeat whose fingerprint
    differs in any of them is an :class:`IdempotencyConflict`.

    The fingerprint of a dispatch with none of the last three (the defaults) is that of the
    event and data alone, as keys recorded before they counted were fingerprinted."""
    scope = {
        name: value
        for name, value, default in (
            ("endpoints", None if endpoints is None else sorted(endpoints), None),
            ("ordering_key", ordering_key, None),
            ("dispatched_by", dispatched_by, DEFAULT_DISPATCHED_BY),
        )
        if value != default
    }
    fingerprint = json.dumps(
        {"event": event, "data": data, **({"scope": scope} if scope else {})},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return IdempotencyKey(
        given=given,
        hashes=tuple(keyring.candidates(f"idempotency:{given}")),
        fingerprints=tuple(keyring.candidates(fingerprint)),
        event=event,
    )


def ordering_for(
    keyring: Keyring, endpoint: Endpoint, data: Mapping[str, Any], given: str | None
) -> tuple[int, tuple[str, ...]] | None:
    """For an ordered endpoint, the item's ordering key as the log stores it: its id and its
    stored form under each configured storage key (numbering holds the key by those); None when the endpoint is unordered or
    the item has no key (it is then delivered unordered)."""
    key = endpoint.ordering_key(data, given)
    if key is None:
        return None
    return lock_id(endpoint.name, key), tuple(keyring.candidates(f"ordering:{key}"))


def repeats_within(keys: Sequence[IdempotencyKey | None]) -> dict[int, int]:
    """Items that repeat an earlier item's idempotency key in the same call: index -> the first
    item's index.

    Raises:
        IdempotencyConflict: two items share a key but not their event and data.
    """
    first: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key.given not in first:
            first[key.given] = index
            continue
        earlier = keys[first[key.given]]
        assert earlier is not None
        if earlier.fingerprints[0] != key.fingerprints[0]:
            raise IdempotencyConflict(key.given)
        repeats[index] = first[key.given]
    return repeats
