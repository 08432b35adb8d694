"""The delivery hot path: new deliveries, the claim, the attempt record, re-opening.

The move to ``in_flight`` is a conditional UPDATE (a claim), so two workers, reconcile and an
operator can never run one delivery at the same time; only the holder of the claim records
its attempt. Knows nothing of HTTP or Redis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..times import utcnow
from ..vocabulary import CLAIMABLE_STATUSES, FINAL_STATUSES, DeliveryStatus
from . import counts, idempotency, ordering, search
from .engine import reading
from .idempotency import IdempotencyKey
from .schema import DELIVERIES, UTCDateTime
from .sealing import Keyring

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class NewDelivery:
    request_id: str
    event: str
    endpoint: str
    url: str
    payload: str
    attempt_limit: int
    replay_of: str | None = None
    status: str = DeliveryStatus.QUEUED
    reason: str | None = None
    patient_key: str | None = None
    """The keyed hash of the event's patient_id (:func:`dispatcher.store.erasure.patient_keys`);
    None leaves the row to be indexed later from its payload."""
    encounter_key: str | None = None
    ordering: tuple[int, tuple[str, ...]] | None = None
    """For an ordered endpoint: the key's id (which rows of a dispatch share a key) and its
    stored-key candidates, whose locks hold it (:func:`dispatcher.store.ordering.number`); None
    for an unordered one."""
    idempotency: IdempotencyKey | None = None
    """The item's idempotency key: a repeat stores nothing (:mod:`dispatcher.store.idempotency`)."""
    item: int = 0
    """Which item of its dispatch this is a delivery of."""
    business_keys: tuple[str, ...] = ()
    """The keyed hashes of its event's business ids (:func:`dispatcher.store.search.business_keys`),
    stored with it so a search finds it; none without ``search_key``."""


@dataclass(frozen=True)
class Stored:
    """What a dispatch's transaction did: the deliveries it stored, and for each repeated
    idempotency key (as given) the request ids its first dispatch stored instead."""

    rows: list[NewDelivery]
    repeated: dict[str, list[str]]
    heads: set[str] = field(default_factory=set)
    """Ordered deliveries that are their key's head: to be queued now (the others of their key
    wait)."""
    recheck: list[str] = field(default_factory=list)
    """Ordered deliveries first in line behind an earlier pending one: it may have become final
    before this transaction committed, so look again once it has."""
    repeated_endpoints: dict[str, str] = field(default_factory=dict)
    """The endpoint of each request id in ``repeated``, read in the same transaction."""


def delivery_rows(rows: Iterable[NewDelivery], now: datetime | None = None) -> list[dict[str, Any]]:
    """The ``webhook_deliveries`` values for new deliveries (``queued`` unless held back)."""
    now = now or utcnow()
    return [
        {
            "request_id": r.request_id,
            "event": r.event,
            "endpoint": r.endpoint,
            "url": r.url,
            "status": r.status,
            "reason": r.reason,
            "attempts": 0,
            "attempt_limit": r.attempt_limit,
            "payload": r.payload,
            "replay_of": r.replay_of,
            "patient_key": r.patient_key,
            "encounter_key": r.encounter_key,
            "ordering_key": None,
            "ordering_seq": None,
            "created_at": now,
            "updated_at": now,
        }
        for r in rows
    ]


def _store(
    conn: Connection,
    rows: list[NewDelivery],
    now: datetime,
    ttl: float,
    seal: Callable[[str], str] | None = None,
) -> Stored:
    """In the caller's transaction: records the idempotency keys, leaves out the repeats,
    numbers the ordered deliveries after the last of their key, and inserts the rest with their
    business ids' keyed hashes."""
    keyed: dict[str, tuple[IdempotencyKey, list[str]]] = {}
    for row in rows:
        if row.idempotency is not None:
            keyed.setdefault(row.idempotency.given, (row.idempotency, []))[1].append(row.request_id)
    repeated = (
        idempotency.claim(conn, [k for k, _ in keyed.values()], [ids for _, ids in keyed.values()], now, ttl)
        if keyed
        else {}
    )
    new = [r for r in rows if r.idempotency is None or r.idempotency.given not in repeated]
    values = delivery_rows(new, now)
    heads: list[int] = []
    recheck: list[int] = []
    if any(r.ordering is not None for r in new):
        heads, recheck = ordering.number(conn, values, [r.ordering for r in new])
    if seal is not None:
        for value in values:
            value["payload"] = seal(value["payload"])
    if values:
        conn.execute(DELIVERIES.insert(), values)
        search.insert_keys(conn, [(r.request_id, r.business_keys) for r in new])
        counts.add(conn, Counter(v["status"] for v in values))
    earlier = [rid for ids in repeated.values() for rid in ids]
    endpoints = (
        {
            str(r.request_id): str(r.endpoint)
            for r in conn.execute(
                sa.select(DELIVERIES.c.request_id, DELIVERIES.c.endpoint).where(
                    DELIVERIES.c.request_id.in_(earlier)
                )
            )
        }
        if earlier
        else {}
    )
    return Stored(
        new, repeated, {new[i].request_id for i in heads}, [new[i].request_id for i in recheck], endpoints
    )


def insert_deliveries(
    engine: Engine, rows: Iterable[NewDelivery], now: datetime | None = None, idempotency_ttl: float = 86400
) -> Stored:
    """Stores new deliveries (``queued`` unless held back) in one transaction: see :func:`_store`.

    Raises:
        IdempotencyConflict: an idempotency key is in use for another event or other data;
            nothing was stored.
    """
    rows = list(rows)
    if not rows:
        return Stored([], {})
    for try_number in (1, 2):
        try:
            with engine.begin() as conn:
                return _store(conn, rows, now or utcnow(), idempotency_ttl)
        except sa.exc.DBAPIError as exc:
            # A pooled connection the server dropped (a restart): the pool is invalidated, try once more.
            if try_number == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def insert_in_session(
    session: Session, rows: Iterable[NewDelivery], keyring: Keyring, idempotency_ttl: float = 86400
) -> Stored:
    """Adds new deliveries to the caller's own transaction (the outbox): they exist if and only
    if the caller commits. The payloads are sealed with ``keyring`` here, since the caller's
    engine does not seal them."""
    rows = list(rows)
    if not rows:
        return Stored([], {})
    return _store(session.connection(), rows, utcnow(), idempotency_ttl, keyring.seal)


@dataclass(frozen=True)
class Claim:
    """A delivery a worker now holds for one attempt."""

    request_id: str
    event: str
    endpoint: str
    url: str
    payload: str | None
    """None once erased; :class:`~dispatcher.store.sealing.Unreadable` when no configured key opens it."""
    attempt: int
    attempt_limit: int
    dispatched_at: datetime | None = None
    """When the event was dispatched (the row's ``created_at``): the lag metrics' start."""


_CLAIM_FIELDS = (
    DELIVERIES.c.request_id,
    DELIVERIES.c.event,
    DELIVERIES.c.endpoint,
    DELIVERIES.c.url,
    DELIVERIES.c.payload,
    DELIVERIES.c.attempts,
    DELIVERIES.c.attempt_limit,
    DELIVERIES.c.created_at,
)


_CLAIM = (
    DELIVERIES.update()
    .where(
        DELIVERIES.c.request_id.in_(sa.bindparam("c_ids", expanding=True)),
        DELIVERIES.c.status.in_(CLAIMABLE_STATUSES),
        ordering.no_earlier_pending(),
    )
    .values(
        status=DeliveryStatus.IN_FLIGHT,
        worker=sa.bindparam("c_worker"),
        attempts=DELIVERIES.c.attempts + 1,
        attempt_started_at=sa.bindparam("c_now", type_=UTCDateTime()),
        updated_at=sa.bindparam("c_now", type_=UTCDateTime()),
    )
    .returning(*_CLAIM_FIELDS)
)
_OWN_CLAIMS = sa.select(*_CLAIM_FIELDS).where(
    DELIVERIES.c.request_id.in_(sa.bindparam("c_ids", expanding=True)),
    DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
    DELIVERIES.c.worker == sa.bindparam("c_worker"),
    DELIVERIES.c.attempt_started_at == sa.bindparam("c_now", type_=UTCDateTime()),
)
"""Built once, so each batch's claim is only its parameters (the SQL is compiled once)."""


def claim_many(
    engine: Engine, request_ids: Sequence[str], worker: str, now: datetime | None = None
) -> dict[str, Claim]:
    """Takes the queued or retrying deliveries among ``request_ids`` for one attempt each, in one
    statement; returns the claims by request_id. An id missing from the answer is not claimable
    (already delivered or failed, held by another worker right now, waiting behind an earlier
    delivery of its ordering key, or no such delivery).

    Safe to call again with the same ``now`` after an error whose commit may have gone through
    (a lost acknowledgement): a row this worker already claimed at exactly ``now`` is this
    call's own claim and is returned, not refused.
    """
    if not request_ids:
        return {}
    ids = sorted(set(request_ids))
    params = {"c_ids": ids, "c_worker": worker, "c_now": now or utcnow()}
    with engine.begin() as conn:
        rows = list(conn.execute(_CLAIM, params).all())
        if len(rows) < len(ids):  # the rest are not claimable, unless claimed by this very call
            got = {row.request_id for row in rows}
            rest = [i for i in ids if i not in got]
            rows += conn.execute(_OWN_CLAIMS, {**params, "c_ids": rest}).all()
    return {
        row.request_id: Claim(
            row.request_id,
            row.event,
            row.endpoint,
            row.url,
            row.payload,
            row.attempts,
            row.attempt_limit,
            row.created_at,
        )
        for row in rows
    }


def claim(engine: Engine, request_id: str, worker: str, now: datetime | None = None) -> Claim | None:
    """:func:`claim_many` for one delivery; None when it is not claimable."""
    return claim_many(engine, [request_id], worker, now).get(request_id)


def release_claim(engine: Engine, request_id: str, worker: str, fail_reason: str | None = None) -> None:
    """Gives back a claim that made no attempt: back to ``queued``/``retrying`` (a deferral for an
    endpoint's limits), or to ``failed`` with ``fail_reason`` (an endpoint that is disabled)."""
    was = sa.case((DELIVERIES.c.attempts <= 1, DeliveryStatus.QUEUED), else_=DeliveryStatus.RETRYING)
    with engine.begin() as conn:
        released = conn.execute(
            DELIVERIES.update()
            .where(
                DELIVERIES.c.request_id == request_id,
                DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
                DELIVERIES.c.worker == worker,
            )
            .values(
                status=DeliveryStatus.FAILED if fail_reason else was,
                reason=fail_reason,
                worker=None,
                attempts=DELIVERIES.c.attempts - 1,
                updated_at=utcnow(),
            )
        )
        if fail_reason:
            counts.add(conn, {DeliveryStatus.FAILED: released.rowcount})


def claims_held_by(engine: Engine, worker: str, claimed_before: datetime) -> list[str]:
    """The deliveries ``in_flight`` under ``worker`` whose claim was made before ``claimed_before``."""
    with reading(engine) as conn:
        return list(
            conn.execute(
                sa.select(DELIVERIES.c.request_id).where(
                    DELIVERIES.c.status == DeliveryStatus.IN_FLIGHT,
                    DELIVERIES.c.worker == worker,
                    DELIVERIES.c.attempt_started_at < claimed_before,
                )
            ).scalars()
        )


def existing_deliveries(engine: Engine, request_ids: Sequence[str]) -> set[str]:
    """The ids among ``request_ids`` that have a delivery row."""
    if not request_ids:
        return set()
    with reading(engine) as conn:
        return set(
            conn.execute(
                sa.select(DELIVERIES.c.request_id).where(DELIVERIES.c.request_id.in_(list(request_ids)))
            ).scalars()
        )


def fail_delivery(engine: Engine, request_id: str, reason: str, now: datetime | None = None) -> None:
    """Marks a delivery failed without an attempt (an unusable stored payload, a removed endpoint)."""
    now = now or utcnow()
    with engine.begin() as conn:
        failed = conn.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.request_id == request_id, DELIVERIES.c.status.not_in(FINAL_STATUSES))
            .values(status=DeliveryStatus.FAILED, worker=None, reason=reason, updated_at=now)
        )
        counts.add(conn, {DeliveryStatus.FAILED: failed.rowcount})


def grant_retries(
    engine: Engine,
    request_ids: Sequence[str],
    max_attempts: int,
    per_endpoint: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Re-opens the deliveries still ``failed`` among ``request_ids`` with a fresh attempt budget
    (``per_endpoint`` overrides ``max_attempts`` by endpoint name), in one statement; returns
    the ids it re-opened. One whose payload was erased has nothing to send and stays failed. An
    ordered one goes to the back of its key, in the order of ``request_ids``."""
    if not request_ids:
        return []
    budget: Any = max_attempts
    if per_endpoint:
        budget = sa.case(
            *((DELIVERIES.c.endpoint == name, n) for name, n in per_endpoint.items()), else_=max_attempts
        )
    with engine.begin() as conn:
        reopened = list(
            conn.execute(
                DELIVERIES.update()
                .where(
                    DELIVERIES.c.request_id.in_(list(request_ids)),
                    DELIVERIES.c.status == DeliveryStatus.FAILED,
                    DELIVERIES.c.payload_erased_at.is_(None),
                )
                .values(
                    status=DeliveryStatus.QUEUED,
                    attempt_limit=DELIVERIES.c.attempts + budget,
                    reason=None,
                    next_attempt_at=None,
                    updated_at=now or utcnow(),
                )
                .returning(DELIVERIES.c.request_id)
            ).scalars()
        )
        # To the back of its key, under the key's lock (the one a dispatch to it takes), before
        # any other shared row is touched: a dispatch holding that lock never waits on this one.
        ordering.renumber(conn, [rid for rid in request_ids if rid in set(reopened)])
        counts.add(conn, {DeliveryStatus.FAILED: -len(reopened)})
    return reopened


def grant_retry(engine: Engine, request_id: str, max_attempts: int, now: datetime | None = None) -> bool:
    """Re-opens one failed delivery with a fresh attempt budget; False unless it was ``failed``."""
    return bool(grant_retries(engine, [request_id], max_attempts, now=now))
