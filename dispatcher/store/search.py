"""Finding deliveries by a business id -- an order number, a prescription's id, an encounter or a
patient id -- without the ids stored in plain text.

At dispatch each delivery gets one row in ``webhook_business_ids`` per distinct business id its
event's data holds (:func:`business_ids`): the id's keyed hash under ``search_key``
(:func:`business_key`) and the delivery's request_id, inserted in the transaction that inserts
the delivery. A search hashes what was typed the same way and selects the deliveries whose rows
carry it (``Selection(business_key=...)``). The field an id came from is not part of the hash,
so ``ORDER123`` is found whichever field holds it.

Without ``search_key`` nothing is indexed, and a delivery dispatched before the key was set (or
under another key) is not found. The rows go with their delivery: deleted with it (prune,
retention) and when its payload is erased (``log erase``, retention), since they would still
link it to its ids.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import BUSINESS_IDS

ID_FIELDS = ("order_number", "prescription_id", "encounter_id", "patient_id")
"""The business ids at the top of an event's data."""
MEDICATION_ID_FIELDS = ("rx_order_id", "prescribed_item_id")
"""The ids of each prescribed medication (``data.medication[]``): a prescription's own ids."""
MAX_BUSINESS_ID = 255
"""The longest value a search takes (the front ends refuse longer ones)."""
_DOMAIN = b"business-id\x00"
"""What every hashed value starts with, so a business-id hash never equals another keyed hash."""
NOT_INDEXED_NOTE = (
    "exact match on an order number, prescription, encounter or patient id; deliveries "
    "dispatched before search_key was set are not indexed and are not found"
)
"""What a search field's help says."""


def new_key() -> str:
    """A new random search key: 32 random bytes, url-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def needs_key(what: str) -> str:
    """The one-line error of a search asked for without ``search_key``: ``what`` names the
    command or field (``log list --business-id``)."""
    return f"{what} needs search_key: run dispatcher keys generate --search and set DISPATCHER_SEARCH_KEY"


def business_key(search_key: str, value: str) -> str:
    """The keyed hash a business id is stored and found by: HMAC-SHA256 under ``search_key`` of
    the domain-separated value, as 64 hex digits. Exact: the caller strips what a person typed."""
    message = _DOMAIN + value.encode("utf-8", "surrogatepass")
    return hmac.new(search_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def business_ids(data: Mapping[str, Any]) -> list[str]:
    """The distinct business ids of an event's data, in the order found: the top-level
    :data:`ID_FIELDS` and each medication's :data:`MEDICATION_ID_FIELDS` that are non-empty
    strings (a null order number is no id)."""
    found = [data.get(name) for name in ID_FIELDS]
    medications = data.get("medication")
    if isinstance(medications, list):
        for item in medications:
            if isinstance(item, Mapping):
                found += [item.get(name) for name in MEDICATION_ID_FIELDS]
    return list(dict.fromkeys(v for v in found if isinstance(v, str) and v))


def business_keys(search_key: str | None, data: Mapping[str, Any]) -> tuple[str, ...]:
    """The keyed hashes of an event's business ids; none without ``search_key``."""
    if not search_key:
        return ()
    return tuple(business_key(search_key, value) for value in business_ids(data))


def insert_keys(conn: Connection, keys_by_delivery: Iterable[tuple[str, Sequence[str]]]) -> int:
    """In the caller's transaction: one row per (request_id, distinct key). Returns the rows."""
    values = [
        {"request_id": request_id, "digest": key}
        for request_id, keys in keys_by_delivery
        for key in dict.fromkeys(keys)
    ]
    if values:
        conn.execute(BUSINESS_IDS.insert(), values)
    return len(values)


def delete_keys(conn: Connection, request_ids: Sequence[str]) -> int:
    """In the caller's transaction: removes the rows of these deliveries. Returns the rows."""
    if not request_ids:
        return 0
    return int(conn.execute(BUSINESS_IDS.delete().where(BUSINESS_IDS.c.request_id.in_(request_ids))).rowcount)


def matching(key: str) -> Any:
    """The request_ids stored under ``key``, as a subquery a condition can take."""
    return sa.select(BUSINESS_IDS.c.request_id).where(BUSINESS_IDS.c.digest == key)
