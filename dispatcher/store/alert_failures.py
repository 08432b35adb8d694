"""The deliveries that ran out of attempts, as ``delivery.failed`` alerts count them: their
failed attempt rows, after the previous alert's cursor (a row id) or, for an endpoint's first
alert, written after a moment. Row ids are given by the database as rows are written, so a
failure written late -- from a worker's spool, by a host whose clock is behind -- is still after
the cursor. Deliveries held back by an operator (a disabled or removed endpoint) have no attempt
row and are not counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..vocabulary import AttemptOutcome
from .engine import reading
from .schema import ALERTS, ATTEMPTS

MAX_REQUEST_IDS = 20
"""Most request ids an alert lists (its count says how many there were)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FailedGroup:
    """An endpoint's deliveries that ran out of attempts in a window: how many, the first ids."""

    count: int
    request_ids: tuple[str, ...]
    upto: int = 0
    """The id of the last failed attempt row counted (the next alert's ``cursor``)."""


def failing_endpoints(engine: Engine, since: datetime, after_id: int | None) -> set[str]:
    """The endpoints with a failed attempt (a delivery that ran out of attempts) recorded after
    ``since`` or with a row id above ``after_id``."""
    a = ATTEMPTS.c
    newer = a.created_at > since if after_id is None else sa.or_(a.created_at > since, a.id > after_id)
    query = sa.select(a.endpoint).where(a.outcome == AttemptOutcome.FAILED, newer).distinct()
    with reading(engine) as conn:
        return set(conn.execute(query).scalars())


def failed_attempts(
    engine: Engine, endpoint: str, *, after_id: int | None = None, since: datetime | None = None
) -> FailedGroup | None:
    """An endpoint's deliveries that ran out of attempts: their failed attempt rows after row
    ``after_id`` (where the previous alert stopped), else recorded after ``since``. Counted by
    the rows' ids, which the database gives as they are written: a failure written late (from a
    worker's spool, by a host whose clock is behind) is still after the previous alert's cursor.
    How many, the first :data:`MAX_REQUEST_IDS` ids, and the last row's id; None when none."""
    a = ATTEMPTS.c
    newer = a.id > after_id if after_id is not None else a.created_at > (since or EPOCH)
    where = (a.outcome == AttemptOutcome.FAILED, a.endpoint == endpoint, newer)
    with reading(engine) as conn:
        count, upto = conn.execute(
            sa.select(sa.func.count(sa.distinct(a.request_id)), sa.func.max(a.id)).where(*where)
        ).one()
        if not count:
            return None
        ids = conn.execute(
            sa.select(a.request_id).where(*where).order_by(a.id).limit(MAX_REQUEST_IDS)
        ).scalars()
        return FailedGroup(int(count), tuple(dict.fromkeys(ids)), int(upto))


def newest_cursors(engine: Engine, kind: str) -> dict[str, int]:
    """Each endpoint's newest alert of ``kind`` with a cursor: where its next alert starts."""
    newest = (
        sa.select(ALERTS.c.endpoint, sa.func.max(ALERTS.c.id).label("id"))
        .where(ALERTS.c.kind == kind, ALERTS.c.cursor.is_not(None))
        .group_by(ALERTS.c.endpoint)
        .subquery()
    )
    query = sa.select(ALERTS.c.endpoint, ALERTS.c.cursor).join(newest, ALERTS.c.id == newest.c.id)
    with reading(engine) as conn:
        return {endpoint: int(cursor) for endpoint, cursor in conn.execute(query).all()}
