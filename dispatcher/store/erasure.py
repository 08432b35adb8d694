"""The PHI lifecycle in the log: erasing payloads (retention, ``log erase``) while the rows stay,
finding a patient's deliveries by keyed hash, and indexing rows written before the hashes.

Erasing a delivery empties its ``payload`` and each of its attempts' ``request_payload``,
``response_body`` and ``error`` (NULL: what the partner answered, its reason phrase included, is
PHI), sets ``payload_erased_at``, and unlinks it from its patient (its keys become ``-``) and from
its business ids (their rows in ``webhook_business_ids`` go, :mod:`.search`); the row keeps
everything else (status, reason, times, attempts, HTTP statuses, failure kinds), so the log still
answers "was it delivered, when, how often, and why not". Only a final delivery (delivered or failed) is
erased: one still to be sent keeps what it will send.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..vocabulary import FINAL_STATUSES, PENDING_STATUSES
from . import search
from .engine import reading
from .schema import ATTEMPTS, DELIVERIES
from .sealing import NO_PATIENT, Keyring, Unreadable
from .selection import Selection, count, pages

BATCH = 1000
"""Rows per transaction: each is short, so no delivery waits on one for long."""


@dataclass(frozen=True)
class Erased:
    deliveries: int
    attempts: int


def patient_keys(keyring: Keyring, data: Mapping[str, Any]) -> tuple[str, str]:
    """The stored keys of an event's ``patient_id`` and ``encounter_id`` (:data:`NO_PATIENT` for
    an id the event does not have)."""
    patient, encounter = data.get("patient_id"), data.get("encounter_id")
    return (
        keyring.index(patient) if isinstance(patient, str) else NO_PATIENT,
        keyring.index(encounter) if isinstance(encounter, str) else NO_PATIENT,
    )


def _unerased_final() -> list[Any]:
    return [DELIVERIES.c.payload_erased_at.is_(None), DELIVERIES.c.status.in_(FINAL_STATUSES)]


def erasable(engine: Engine, cutoff: datetime, batch: int = BATCH) -> Iterator[list[str]]:
    """Pages of the final deliveries last updated before ``cutoff`` whose payload is not erased
    yet, oldest first. Read through the index of unerased rows by age, so neither the rows
    erased already nor the rest of the log are visited; the few deliveries still to be sent
    among them are left out here, not in SQL (a status condition would lead the planner to the
    status index, which spans every final delivery)."""
    selection = Selection(updated_before=cutoff, with_payload=True)
    for page in pages(
        engine, selection, ("request_id", "status"), order_by=("updated_at", "request_id"), batch=batch
    ):
        yield [row.request_id for row in page if row.status in FINAL_STATUSES]


def count_erasable_before(engine: Engine, cutoff: datetime) -> int:
    """How many :func:`erasable` would take: the unerased rows by age, less the unfinished ones."""
    unerased = count(engine, Selection(updated_before=cutoff, with_payload=True))
    pending = count(engine, Selection(statuses=PENDING_STATUSES, updated_before=cutoff, with_payload=True))
    return unerased - pending


def erase(engine: Engine, request_ids: Sequence[str], now: datetime) -> Erased:
    """Erases the PHI of those of ``request_ids`` that are final and not erased yet, in one
    transaction; the condition is checked by the UPDATE itself, so a delivery re-opened
    meanwhile (``dispatcher retry``) keeps its payload."""
    if not request_ids:
        return Erased(0, 0)
    with engine.begin() as conn:
        erased = list(
            conn.execute(
                DELIVERIES.update()
                .where(DELIVERIES.c.request_id.in_(request_ids), *_unerased_final())
                .values(payload=None, payload_erased_at=now, patient_key=NO_PATIENT, encounter_key=NO_PATIENT)
                .returning(DELIVERIES.c.request_id)
            ).scalars()
        )
        attempts = 0
        if erased:
            attempts = conn.execute(
                ATTEMPTS.update()
                .where(ATTEMPTS.c.request_id.in_(erased))
                .values(request_payload=None, response_body=None, error=None)
            ).rowcount
            search.delete_keys(conn, erased)
    return Erased(len(erased), attempts)


@dataclass(frozen=True)
class PatientDelivery:
    request_id: str
    event: str
    status: str
    erased: bool


def _as_found(query: Any, engine: Engine) -> list[PatientDelivery]:
    with reading(engine) as conn:
        rows = conn.execute(query.order_by(DELIVERIES.c.created_at, DELIVERIES.c.request_id)).all()
    return [PatientDelivery(r.request_id, r.event, r.status, bool(r.erased)) for r in rows]


def _found_columns() -> Any:
    return sa.select(
        DELIVERIES.c.request_id,
        DELIVERIES.c.event,
        DELIVERIES.c.status,
        DELIVERIES.c.payload_erased_at.is_not(None).label("erased"),
    )


def deliveries_by_id(engine: Engine, request_ids: Sequence[str]) -> list[PatientDelivery]:
    found: list[PatientDelivery] = []
    ids = list(dict.fromkeys(request_ids))
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        found += _as_found(_found_columns().where(DELIVERIES.c.request_id.in_(chunk)), engine)
    return found


def patient_deliveries(
    engine: Engine, patient_keys: Sequence[str], encounter_keys: Sequence[str] = ()
) -> list[PatientDelivery]:
    """Every delivery stored under one of ``patient_keys`` (and one of ``encounter_keys``, when
    given), through the keys' indexes."""
    query = _found_columns().where(DELIVERIES.c.patient_key.in_(patient_keys))
    if encounter_keys:
        query = query.where(DELIVERIES.c.encounter_key.in_(encounter_keys))
    return _as_found(query, engine)


def count_unindexed(engine: Engine) -> int:
    """Deliveries whose patient and encounter keys are not stored yet (written before 0003)."""
    query = sa.select(sa.func.count()).where(DELIVERIES.c.patient_key.is_(None))
    with reading(engine) as conn:
        return int(conn.execute(query).scalar_one())


def index_missing(
    engine: Engine, keyring: Keyring, progress: Callable[[int], None] | None = None, batch: int = BATCH
) -> list[str]:
    """Stores the patient and encounter keys of every delivery that has none, in batches.

    Returns the request_ids left unindexed because their payload is sealed under a key not
    configured (they are indexed once it is).
    """
    unreadable: list[str] = []
    after = ""
    while True:
        query = (
            sa.select(DELIVERIES.c.request_id, DELIVERIES.c.payload)
            .where(DELIVERIES.c.patient_key.is_(None), DELIVERIES.c.request_id > after)
            .order_by(DELIVERIES.c.request_id)
            .limit(batch)
        )
        with reading(engine) as conn:
            rows = conn.execute(query).all()
        if not rows:
            return unreadable
        after = rows[-1].request_id
        updates = []
        for row in rows:
            if isinstance(row.payload, Unreadable):
                unreadable.append(row.request_id)
                continue
            patient, encounter = patient_keys(keyring, _data_of(row.payload))
            updates.append({"rid": row.request_id, "patient": patient, "encounter": encounter})
        if updates:
            with engine.begin() as conn:
                conn.execute(
                    DELIVERIES.update()
                    .where(DELIVERIES.c.request_id == sa.bindparam("rid"), DELIVERIES.c.patient_key.is_(None))
                    .values(patient_key=sa.bindparam("patient"), encounter_key=sa.bindparam("encounter")),
                    updates,
                )
        if progress:
            progress(len(rows))


def compact(engine: Engine) -> None:
    """Lets go of erased text the database file may still hold: SQLite overwrites freed pages
    (``secure_delete``, set on every connection) and here empties its write-ahead log. PostgreSQL
    reclaims the old row versions when it vacuums (autovacuum, or ``VACUUM`` after a large erase)."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside any transaction, which a checkpoint needs
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()


def _data_of(payload: str | None) -> Mapping[str, Any]:
    """The ``data`` of a stored payload; empty for an erased or unparsable one."""
    if not payload:
        return {}
    try:
        data = json.loads(payload).get("data")
    except (ValueError, AttributeError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
