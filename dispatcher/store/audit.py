"""The audit trail: who did what to the log, when, on which selection, with what counts.

One row per operator action that changes or reveals the log (each an
:class:`~dispatcher.vocabulary.AuditAction`: ``retry``, ``replay``, ``prune``, ``retention run``,
``log erase``, ``log export``, ``endpoints disable|enable``, ``storage encrypt|rotate``,
``delivery reveal``). The
selection and counts are JSON written by the action; neither holds PHI (a patient is named by
its stored key, never its id), and both are shown to operators. Read back all at once
(:func:`entries`, ``dispatcher audit list``) or a page at a time, newest first, by keyset on the
row's id (:func:`newest_first`, the console).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..times import utcnow
from ..vocabulary import AuditAction
from .engine import reading
from .schema import AUDIT


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    selection: dict[str, Any]
    counts: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "selection": self.selection,
            "counts": self.counts,
        }


def record(
    engine: Engine,
    actor: str,
    action: AuditAction,
    selection: Mapping[str, Any],
    counts: Mapping[str, Any],
    at: datetime | None = None,
) -> None:
    """Writes one audit row (its own transaction: the action's work is done by then)."""
    with engine.begin() as conn:
        conn.execute(
            AUDIT.insert().values(
                at=at or utcnow(),
                actor=actor[:255],
                action=action.value,
                selection=json.dumps(selection, default=str, sort_keys=True),
                counts=json.dumps(counts, default=str, sort_keys=True),
            )
        )


def entries(engine: Engine, since: datetime | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Audit rows, oldest first (the newest ``limit`` when given)."""
    query = sa.select(AUDIT)
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if limit is not None:
        query = query.order_by(AUDIT.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        rows = sorted(conn.execute(query).all(), key=lambda r: r.id)
    return [_entry(r) for r in rows]


def newest_first(
    engine: Engine, before: int | None = None, limit: int = 50
) -> tuple[list[AuditEntry], int | None]:
    """Up to ``limit`` audit rows older than row ``before`` (from the newest without it), newest
    first, and the ``before`` of the next page (None on the last). A row's id only grows, so a
    page is one seek on the primary key, however long the trail."""
    query = sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AUDIT.c.id < before)
    with reading(engine) as conn:
        rows = [_entry(r) for r in conn.execute(query).all()]
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].id


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        row.id, row.at, row.actor, row.action, json.loads(row.selection), json.loads(row.counts)
    )
