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

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from .. import store, telemetry
from ..contract.events import EventData
from ..runtime import get_runtime
from .dispatch import ids_by_item, log_stored, prepare_for, queue_stored, with_current_endpoints
from .request import DEFAULT_DISPATCHED_BY, DispatchRequest

_PENDING = "dispatcher_outbox_pending"


def _after_commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    if not pending:
        return
    runtime = get_runtime()
    for stored, traces in pending:
        # Redis refusing is logged there: reconcile will queue the deliveries.
        log_stored(stored, queue_stored(runtime, stored, traces), via="outbox")
        if traces is not None:
            traces.end({0: len(stored.rows)})


def _after_rollback(session: Session) -> None:
    for _stored, traces in session.info.pop(_PENDING, []):
        if traces is not None:
            traces.end({}, "rollback")


def dispatch_in_transaction(
    session: Session,
    event: str | EventData,
    data: Mapping[str, Any] | None = None,
    *,
    dispatched_by: str = DEFAULT_DISPATCHED_BY,
    endpoints: Sequence[str] | None = None,
    idempotency_key: str | None = None,
    ordering_key: str | None = None,
) -> list[str]:
    """Like :func:`dispatcher.dispatch`, but the deliveries are written in ``session``'s
    transaction and queued only once it commits. A rollback leaves no trace (an idempotency
    key included: it is recorded in the same transaction). As with ``dispatch()``, a delivery
    to a disabled endpoint is stored ``failed`` with reason ``endpoint_disabled`` and never
    queued (:mod:`dispatcher.intake.disabled`).

    The session must be bound to the transaction-log database.
    """
    runtime = get_runtime()
    request = DispatchRequest.of(event, data, endpoints, dispatched_by, idempotency_key, ordering_key)
    deliveries = with_current_endpoints(runtime, lambda: prepare_for(runtime, [request]))
    if not deliveries:
        return []
    runtime.engine  # noqa: B018 - the log tables exist, at this version's schema, before the caller writes
    traces = telemetry.dispatch_traces({0: request.event})  # ends once the caller's transaction does
    try:  # sealed here: the caller's engine has no storage keys
        stored = store.insert_in_session(
            session, deliveries, runtime.keyring, runtime.settings.idempotency_ttl_seconds
        )
    except BaseException as exc:
        if traces is not None:
            traces.end({}, type(exc).__name__)
        raise
    if not sa_event.contains(session, "after_commit", _after_commit):
        sa_event.listen(session, "after_commit", _after_commit)
        sa_event.listen(session, "after_rollback", _after_rollback)
    session.info.setdefault(_PENDING, []).append((stored, traces))
    return ids_by_item(stored.rows, stored.repeated, [idempotency_key])
