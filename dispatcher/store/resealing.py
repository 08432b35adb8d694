"""Sealing rows already in the log: ``storage encrypt`` (rows written before keys were set) and
``storage rotate`` (rows under a key other than the first).

Each PHI column is walked by primary key in batches, every batch one short transaction, so
workers go on delivering meanwhile. A value is replaced only if it is still the one read
(compare-and-set), so a row a worker changed since keeps the worker's value, which it sealed
itself. The walk selects, in SQL, only the values still to do: a run that stops part way is
resumed by running it again. A delivery's patient and encounter keys are re-made under the
first key with its payload (a row indexed before keys were set had an unkeyed hash).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .engine import reading
from .erasure import _data_of, patient_keys
from .schema import ATTEMPTS, DELIVERIES
from .sealing import PREFIX, Keyring, Unreadable

BATCH = 500

COLUMNS = (
    (DELIVERIES, "payload", "request_id"),
    (ATTEMPTS, "request_payload", "id"),
    (ATTEMPTS, "response_body", "id"),
    (ATTEMPTS, "error", "id"),
)
"""Every sealed column: (table, column, primary key)."""


@dataclass
class Resealed:
    """What a run did, per ``table.column``, and the rows no configured key opens."""

    sealed: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    """``table.column`` of ``row`` for each value no configured key opens."""


def _raw(column: sa.Column[Any]) -> Any:
    """The column as stored (not opened)."""
    return sa.type_coerce(column, sa.String())


def to_do(keyring: Keyring, mode: str, column: sa.Column[Any]) -> Any:
    """The values ``mode`` (``encrypt`` or ``rotate``) still has to seal, as a WHERE clause."""
    raw = _raw(column)
    if mode == "encrypt":
        return sa.and_(column.is_not(None), raw.not_like(f"{PREFIX}%"))
    return sa.and_(raw.like(f"{PREFIX}%"), raw.not_like(f"{keyring.first_prefix}%"))


def count_to_do(engine: Engine, keyring: Keyring, mode: str) -> dict[str, int]:
    counts = {}
    with reading(engine) as conn:
        for table, name, _ in COLUMNS:
            query = sa.select(sa.func.count()).select_from(table).where(to_do(keyring, mode, table.c[name]))
            counts[f"{table.name}.{name}"] = int(conn.execute(query).scalar_one())
    return counts


def reseal(
    engine: Engine,
    keyring: Keyring,
    mode: str,
    progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> Resealed:
    """Seals every value ``mode`` selects under the first key (see the module's docstring)."""
    if not keyring.sealing:
        raise ValueError("no storage_keys are configured")
    if mode not in ("encrypt", "rotate"):
        raise ValueError(f"unknown mode {mode!r}; expected encrypt or rotate")
    report = Resealed()
    for table, name, key in COLUMNS:
        report.sealed[f"{table.name}.{name}"] = _reseal_column(
            engine, keyring, mode, (table, name, key), report, progress, batch
        )
    return report


def _reseal_column(
    engine: Engine,
    keyring: Keyring,
    mode: str,
    where: tuple[sa.Table, str, str],
    report: Resealed,
    progress: Callable[[int], None] | None,
    batch: int,
) -> int:
    table, name, key = where
    column, pk = table.c[name], table.c[key]
    done = 0
    after: Any = None
    while True:
        query = sa.select(pk, _raw(column).label("raw")).where(to_do(keyring, mode, column))
        if after is not None:
            query = query.where(pk > after)
        with reading(engine) as conn:
            rows = conn.execute(query.order_by(pk).limit(batch)).all()
        if not rows:
            return done
        after = rows[-1][0]
        updates = []
        for row_key, raw in rows:
            text = keyring.open(raw)
            if isinstance(text, Unreadable):
                report.unreadable.append(f"{table.name}.{name} of {key} {row_key}: {text.problem}")
                continue
            values = {"pk": row_key, "old": raw, "new": keyring.seal(text)}
            if table is DELIVERIES:
                values["patient"], values["encounter"] = patient_keys(keyring, _data_of(text))
            updates.append(values)
        done += _write(engine, table, column, pk, updates)
        if progress:
            progress(len(rows))


def _write(
    engine: Engine, table: sa.Table, column: sa.Column[Any], pk: sa.Column[Any], updates: list[dict[str, Any]]
) -> int:
    if not updates:
        return 0
    values: dict[str, Any] = {column.name: sa.bindparam("new", type_=sa.String())}
    if table is DELIVERIES:
        values.update(patient_key=sa.bindparam("patient"), encounter_key=sa.bindparam("encounter"))
    statement = (
        table.update()
        .where(pk == sa.bindparam("pk"), _raw(column) == sa.bindparam("old", type_=sa.String()))
        .values(values)
    )
    with engine.begin() as conn:
        result = conn.execute(statement, updates)
    return int(result.rowcount) if result.rowcount >= 0 else len(updates)
