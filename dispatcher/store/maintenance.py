"""Deleting what the log no longer needs: final deliveries, their attempt rows and their business
ids' keyed hashes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Engine

from ..vocabulary import FINAL_STATUSES
from . import counts, search
from .schema import ATTEMPTS, DELIVERIES


def delete_final(
    engine: Engine, request_ids: Sequence[str], statuses: Sequence[str], cutoff: datetime
) -> tuple[int, int]:
    """Deletes, in one transaction, those of the deliveries still in a final status in
    ``statuses`` and last updated before ``cutoff``, with their attempt rows and business-id rows.

    The conditions are checked again by the DELETE itself, so a delivery re-opened since it
    was read (``dispatcher retry``) is kept, attempts and all. Returns (deliveries, attempts).
    """
    statuses = [s for s in statuses if s in FINAL_STATUSES]
    if not request_ids or not statuses:
        return 0, 0
    with engine.begin() as conn:
        deleted = conn.execute(
            DELIVERIES.delete()
            .where(
                DELIVERIES.c.request_id.in_(request_ids),
                DELIVERIES.c.status.in_(statuses),
                DELIVERIES.c.updated_at < cutoff,
            )
            .returning(DELIVERIES.c.request_id, DELIVERIES.c.status)
        ).all()
        if not deleted:
            return 0, 0
        ids = [row.request_id for row in deleted]
        attempts = conn.execute(ATTEMPTS.delete().where(ATTEMPTS.c.request_id.in_(ids))).rowcount
        search.delete_keys(conn, ids)
        counts.add(conn, {status: -n for status, n in counts.statuses_of(deleted).items()})
    return len(deleted), attempts
