"""Alert occurrences and their sending (``webhook_alerts``, ``webhook_alert_sends``).

An occurrence is raised once: its ``occurrence`` text is unique (e.g.
``endpoint.breaker_opened:pharmacy:2026-12-07T20:01:02Z``), so every process that sees the same
thing may raise it and one row results. What each channel was sent, and answered, is one row per
alert and channel. No PHI: names, counts, request ids and categories only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from ..times import utcnow
from .schema import ALERTS

MAX_REQUEST_IDS = 20
"""Most request ids an alert lists (its count says how many there were)."""


def raise_alert(
    db: Engine | Connection,
    kind: str,
    occurrence: str,
    *,
    detail: str,
    endpoint: str | None = None,
    count: int | None = None,
    request_ids: Sequence[str] = (),
    at: datetime | None = None,
) -> bool:
    """Records an occurrence unless it is already recorded; True when this call recorded it.
    ``db`` may be a connection inside the caller's transaction (the alert then commits with
    what caused it)."""
    row: dict[str, object] = {
        "occurrence": occurrence[:255],
        "kind": kind,
        "endpoint": endpoint,
        "occurred_at": at or utcnow(),
        "count": count,
        "request_ids": json.dumps(list(request_ids[:MAX_REQUEST_IDS])) if request_ids else None,
        "detail": detail,
    }
    if isinstance(db, Connection):
        return _insert_once(db, row)
    with db.begin() as conn:
        return _insert_once(conn, row)


def _insert_once(conn: Connection, row: Mapping[str, object]) -> bool:
    """Inserts the row unless its occurrence is there; a concurrent raise loses on the unique key."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(ALERTS).values(**row).on_conflict_do_nothing().returning(ALERTS.c.id)
    return conn.execute(statement).first() is not None
