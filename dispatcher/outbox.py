"""Dispatch inside the caller's database transaction (the transactional outbox).

For a backend that writes its own records with SQLAlchemy or SQLModel on the same database as
the transaction log: the deliveries are inserted through the caller's session, so they exist
if and only if the caller's commit does. Right after that commit the jobs are queued; should
Redis refuse then, reconcile queues them (the rows are already durable).

    with Session(engine) as session:
        session.add(prescription)
        dispatch_in_transaction(session, "prescription_submitted", data)
        session.commit()          # the event exists from here, and is queued at once
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from . import queue, store
from .dispatch import prepare
from .logs import log_line
from .runtime import get_runtime

_PENDING = "dispatcher_outbox_pending"


def _after_commit(session: Session) -> None:
    request_ids = session.info.pop(_PENDING, [])
    if not request_ids:
        return
    runtime = get_runtime()
    try:
        queue.enqueue_new(runtime.queue, request_ids)
    except redis.RedisError as exc:
        log_line(
            logging.WARNING,
            "redis unavailable after an outbox commit; reconcile will queue the deliveries",
            count=len(request_ids),
            error=f"{type(exc).__name__}: {exc}",
        )
        return
    for request_id in request_ids:
        log_line(logging.INFO, "dispatched", request_id=request_id, via="outbox")


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def dispatch_in_transaction(
    session: Session,
    event: str,
    data: dict[str, Any],
    *,
    dispatched_by: str = "SYSTEM",
    endpoints: Sequence[str] | None = None,
) -> list[str]:
    """Like :func:`dispatcher.dispatch`, but the deliveries are written in ``session``'s
    transaction and queued only once it commits. A rollback leaves no trace.

    The session must be bound to the transaction-log database.
    """
    runtime = get_runtime()
    deliveries = prepare(runtime.settings, event, [data], dispatched_by=dispatched_by, endpoints=endpoints)
    if not deliveries:
        return []
    runtime.engine  # noqa: B018 - the log tables exist before the caller's transaction writes to them
    session.execute(store.DELIVERIES.insert(), store.delivery_rows(deliveries))
    if not sa_event.contains(session, "after_commit", _after_commit):
        sa_event.listen(session, "after_commit", _after_commit)
        sa_event.listen(session, "after_rollback", _after_rollback)
    request_ids = [d.request_id for d in deliveries]
    session.info.setdefault(_PENDING, []).extend(request_ids)
    return request_ids
