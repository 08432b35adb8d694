"""The endpoints in the database (``webhook_endpoints``) and their generation
(``webhook_endpoint_catalog``).

Until the catalog row exists the configuration file's endpoints are the truth; the first start
imports them (:func:`import_first`: whoever is first, once) and from then on the database is.
Each endpoint is the mapping the file would hold for it (``config.endpoint_records``), sealed
with the storage keys when set, with the signing secrets it is retiring (each until the end of
its grace). Every change raises the generation in the same transaction, so a process learns of
a change by reading one row (``Runtime.refresh_endpoints``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import DispatcherError
from ..times import utcnow
from .engine import reading
from .schema import ENDPOINT_CATALOG, ENDPOINTS

CATALOG_ID = 1


class EndpointExists(DispatcherError, ValueError):
    """An endpoint of that name is in the database already."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"name: an endpoint named {name!r} exists; choose another name or edit it")


class EndpointChanged(DispatcherError, ValueError):
    """The endpoint was changed by someone else between reading it and writing it back."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"endpoint {name} was changed meanwhile by someone else; nothing was written: run it again"
        )


@dataclass(frozen=True)
class Retiring:
    """A signing secret still signing until ``until`` (a rotation's grace)."""

    secret: str
    until: datetime


@dataclass(frozen=True)
class StoredEndpoint:
    name: str
    position: int
    definition: Mapping[str, Any]
    retiring: tuple[Retiring, ...]
    created_at: datetime
    updated_at: datetime

    def retiring_at(self, now: datetime) -> list[str]:
        """The retiring secrets whose grace lasts at ``now``."""
        return [r.secret for r in self.retiring if r.until > now]


def generation(engine: Engine) -> int | None:
    """The catalog's generation; None before the file's endpoints were ever imported."""
    with reading(engine) as conn:
        return _generation(conn)


def _generation(conn: Connection) -> int | None:
    value = conn.execute(
        sa.select(ENDPOINT_CATALOG.c.generation).where(ENDPOINT_CATALOG.c.id == CATALOG_ID)
    ).scalar()
    return None if value is None else int(value)


def catalog(engine: Engine) -> tuple[int | None, list[StoredEndpoint]]:
    """The generation and every stored endpoint in their order, read together."""
    with reading(engine) as conn:
        return _generation(conn), [
            _stored(row)
            for row in conn.execute(sa.select(ENDPOINTS).order_by(ENDPOINTS.c.position)).mappings()
        ]


def stored(engine: Engine, name: str) -> StoredEndpoint | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(ENDPOINTS).where(ENDPOINTS.c.name == name)).mappings().first()
    return None if row is None else _stored(row)


def _stored(row: sa.RowMapping) -> StoredEndpoint:
    retiring = json.loads(row["retiring"]) if row["retiring"] else []
    return StoredEndpoint(
        name=row["name"],
        position=row["position"],
        definition=json.loads(row["definition"]),
        retiring=tuple(Retiring(r["secret"], datetime.fromisoformat(r["until"])) for r in retiring),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _retiring_text(retiring: Sequence[Retiring]) -> str | None:
    if not retiring:
        return None
    return json.dumps([{"secret": r.secret, "until": r.until.isoformat()} for r in retiring])


def _bump(conn: Connection, now: datetime) -> int:
    """Raises the generation (making the catalog row on the first change); returns the new one."""
    updated = conn.execute(
        ENDPOINT_CATALOG.update()
        .where(ENDPOINT_CATALOG.c.id == CATALOG_ID)
        .values(generation=ENDPOINT_CATALOG.c.generation + 1, changed_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(
            ENDPOINT_CATALOG.insert().values(id=CATALOG_ID, generation=1, imported_at=now, changed_at=now)
        )
    return int(_generation(conn) or 1)


def import_first(engine: Engine, definitions: Sequence[Mapping[str, Any]]) -> bool:
    """The first start: stores ``definitions`` (the file's endpoints) unless the catalog exists;
    True when this call imported them (two processes starting together import once: the
    catalog row's key decides)."""
    now = utcnow()
    try:
        with engine.begin() as conn:
            if _generation(conn) is not None:
                return False
            conn.execute(
                ENDPOINT_CATALOG.insert().values(id=CATALOG_ID, generation=1, imported_at=now, changed_at=now)
            )
            for position, definition in enumerate(definitions):
                _insert(conn, definition, position, now)
    except sa.exc.IntegrityError:
        return False
    return True


def _insert(conn: Connection, definition: Mapping[str, Any], position: int, now: datetime) -> None:
    conn.execute(
        ENDPOINTS.insert().values(
            name=definition["name"],
            position=position,
            definition=json.dumps(dict(definition)),
            retiring=None,
            created_at=now,
            updated_at=now,
        )
    )


def add(engine: Engine, definition: Mapping[str, Any]) -> int:
    """Stores a new endpoint after the others; returns the new generation.

    Raises:
        EndpointExists: one of that name is stored (checked by the table's key, so two adds
            racing store one).
    """
    now = utcnow()
    try:
        with engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(ENDPOINTS.c.position))).scalar()
            _insert(conn, definition, 0 if last is None else int(last) + 1, now)
            return _bump(conn, now)
    except sa.exc.IntegrityError:
        raise EndpointExists(str(definition["name"])) from None


def update(
    engine: Engine,
    name: str,
    definition: Mapping[str, Any],
    retiring: Sequence[Retiring] | None = None,
    *,
    read_at: datetime | None = None,
) -> int | None:
    """Replaces a stored endpoint's mapping (and, when given, its retiring secrets); returns the
    new generation, or None when no endpoint has that name. With ``read_at`` (the ``updated_at``
    the caller read), only if nobody changed it since.

    Raises:
        EndpointChanged: ``read_at`` given and the endpoint changed since (nothing written).
    """
    now = utcnow()
    values: dict[str, Any] = {"definition": json.dumps(dict(definition)), "updated_at": now}
    if retiring is not None:
        values["retiring"] = _retiring_text(retiring)
    where = [ENDPOINTS.c.name == name] + ([ENDPOINTS.c.updated_at == read_at] if read_at is not None else [])
    with engine.begin() as conn:
        changed = conn.execute(ENDPOINTS.update().where(*where).values(**values)).rowcount
        if changed:
            return _bump(conn, now)
    if read_at is not None and stored(engine, name) is not None:
        raise EndpointChanged(name)
    return None


def remove(engine: Engine, name: str) -> int | None:
    """Deletes a stored endpoint (its log rows stay); the new generation, or None when absent."""
    now = utcnow()
    with engine.begin() as conn:
        removed = conn.execute(ENDPOINTS.delete().where(ENDPOINTS.c.name == name)).rowcount
        return _bump(conn, now) if removed else None


def replace_all(engine: Engine, definitions: Sequence[Mapping[str, Any]]) -> int:
    """Makes the stored endpoints exactly ``definitions``, in their order (``endpoints import
    --replace``); an endpoint kept keeps its created time and loses any retiring secret."""
    now = utcnow()
    names = [str(d["name"]) for d in definitions]
    with engine.begin() as conn:
        created = dict(conn.execute(sa.select(ENDPOINTS.c.name, ENDPOINTS.c.created_at)).all())
        conn.execute(ENDPOINTS.delete())
        for position, definition in enumerate(definitions):
            _insert(conn, definition, position, created.get(names[position], now))
        conn.execute(ENDPOINTS.update().values(updated_at=now))
        return _bump(conn, now)
