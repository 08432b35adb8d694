"""Reconcile: make every unfinished delivery in the database have a live job in Redis.

Finds, and repairs:

* **abandoned** deliveries: ``in_flight`` under a worker whose liveness key has expired and whose
  lease in the database has too (killed, host lost; a Redis flush removes the keys of live
  workers, never their leases). The cut-short attempt is recorded as ``interrupted`` and the delivery re-queued at
  once with the same request_id (the next attempt carries ``retry: true``). A live worker's
  claims are its own to recover (:func:`recover_own_claims`).
* **orphaned** deliveries: ``queued`` or ``retrying`` with no active job (Redis flushed or
  restarted, dispatch while Redis was down, a job failed by RQ). Re-queued exactly once, at
  their ``next_attempt_at`` when it is still ahead.
* **stranded** jobs: marked started by a live worker longer ago than any RQ job may run, while
  their delivery is not in flight (a batch that could not give a taken job back because Redis
  failed at that moment). Re-queued like orphans.
* **overdue** retries: scheduled jobs well past their time (RQ's scheduler lock held by a dead
  worker). Moved to the queue.

Workers run this on their own about once a minute, one at a time across hosts (a Redis lock);
``dispatcher reconcile`` runs it by hand.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Row

from .. import queue, store
from ..logs import log_line
from ..policy import reconcile as verdicts
from ..runtime import Runtime
from ..store import leases
from ..vocabulary import CLAIMABLE_STATUSES, AttemptOutcome, DeliveryStatus, JobState
from . import liveness, metrics, spool

LOCK_KEY = "dispatcher:reconcile-lock"
"""Held for a minute by the worker that ran the routine reconcile (one a minute, across hosts)."""
NOW_LOCK_KEY = "dispatcher:reconcile-now"
NOW_LOCK_SECONDS = 15
"""An urgent reconcile runs on one worker at a time; the lock lapses if that worker dies."""
OWN_CLAIM_GRACE = timedelta(seconds=60)
"""A worker looks at its own claims older than this (a job records its claims as it makes them)."""
BATCH = 500
"""Unfinished deliveries looked at per Redis pipeline."""
_COLUMNS = ("request_id", "status", "worker", "next_attempt_at")


@dataclass
class ReconcileReport:
    checked: int = 0
    abandoned: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "abandoned": self.abandoned,
            "requeued": self.requeued,
            "overdue": self.overdue,
        }


def _unfinished(runtime: Runtime, statuses: tuple[str, ...], older_than: datetime) -> Any:
    """Pages of deliveries in ``statuses`` not updated since ``older_than``, oldest first."""
    selection = store.Selection(statuses=statuses, updated_before=older_than)
    return store.pages(
        runtime.engine, selection, _COLUMNS, order_by=("updated_at", "request_id"), batch=BATCH
    )


def living(runtime: Runtime, workers: set[str | None]) -> tuple[set[str], set[str]]:
    """Of ``workers``: those whose liveness key is in Redis, and those of the rest whose lease in
    the database runs (asked only when Redis lacks some). Leases are judged by the clock, not by
    a reconcile's ``now``, which a caller may set ahead to look past the graces."""
    names = {w for w in workers if w}
    alive = liveness.alive_workers(runtime.redis, names)
    rest = names - alive
    leased = leases.live_workers(runtime.engine, rest, datetime.now(UTC)) if rest else set()
    return alive, leased


def _recover_abandoned(runtime: Runtime, now: datetime, report: ReconcileReport) -> None:
    for page in _unfinished(runtime, (DeliveryStatus.IN_FLIGHT,), now - verdicts.ABANDON_GRACE):
        alive, leased = living(runtime, {row.worker for row in page})
        for row in page:
            if verdicts.is_abandoned(row.worker, alive, leased):
                _recover(runtime, row.request_id, now, report)


def _recover(runtime: Runtime, request_id: str, now: datetime, report: ReconcileReport) -> None:
    """Records the claim's cut-short attempt as ``interrupted`` and queues the delivery again."""
    delivery = store.get_delivery(runtime.engine, request_id)
    if delivery is None or delivery["status"] != DeliveryStatus.IN_FLIGHT:
        return
    record = store.AttemptRecord(
        request_id=delivery["request_id"],
        event=delivery["event"],
        endpoint=delivery["endpoint"],
        url=delivery["url"],
        attempt=delivery["attempts"],
        outcome=AttemptOutcome.INTERRUPTED,
        created_at=now,
        error=f"worker {delivery['worker']} stopped holding the claim; the POST may or may not have been sent",
        next_attempt_at=now,
    )
    if not store.record_attempt(runtime.engine, record, delivery["worker"]):
        return
    metrics.record_attempt(delivery["event"], delivery["endpoint"], AttemptOutcome.INTERRUPTED, None)
    queue.remove_job(runtime.queue, request_id)
    queue.ensure_queued(runtime.queue, request_id)
    report.abandoned.append(request_id)
    log_line(
        logging.WARNING,
        "interrupted attempt recovered",
        request_id=request_id,
        event=delivery["event"],
        endpoint=delivery["endpoint"],
        attempt=delivery["attempts"],
        outcome=AttemptOutcome.INTERRUPTED,
        worker=delivery["worker"],
    )


def recover_own_claims(runtime: Runtime, now: datetime | None = None) -> ReconcileReport:
    """Run by each worker on its own claims: a delivery still ``in_flight`` under this worker's
    name, claimed over :data:`OWN_CLAIM_GRACE` ago, that no job of this process holds
    (``runtime.holding``) and whose attempt record is not waiting in this host's spool, was left
    by a job cut short (RQ's job timeout, a claim whose commit acknowledgement was lost, a claim
    that could not be given back). Only the worker itself can know that, so reconcile never
    takes a live worker's claims; this does, for its own."""
    now = now or datetime.now(UTC)
    report = ReconcileReport()
    rows = store.claims_held_by(runtime.engine, runtime.worker_name, now - OWN_CLAIM_GRACE)
    if not rows:
        return report
    held = runtime.holding_now()
    spooled = spool.request_ids_held(runtime.spool_dir)
    for request_id in rows:
        if request_id not in held and request_id not in spooled:
            _recover(runtime, request_id, now, report)
    return report


def requeue_dropped(runtime: Runtime, request_ids: list[str], now: datetime | None = None) -> list[str]:
    """Jobs this worker took from Redis and then lost track of because Redis failed around them
    (a failover, every connection reset): taken out of RQ's intermediate list, where RQ would
    fail them only after a minute or two, and queued again as their delivery says: now if it is
    queued, at its next attempt if it waits for a retry, not at all if it is final or in flight
    (a claim's owner recovers it). Enqueueing is unique per request_id, so a job that is still
    there is left as it is. Returns the ids queued again."""
    now = now or datetime.now(UTC)
    requeued = []
    for request_id in request_ids:
        queue.leave_transit(runtime.queue, request_id, copies=1)  # this worker's own take
        delivery = store.get_delivery(runtime.engine, request_id)
        if delivery is None or delivery["status"] not in CLAIMABLE_STATUSES:
            continue
        at = delivery["next_attempt_at"]
        state, _worker = queue.job_state(runtime.queue, request_id)
        if state in (JobState.SCHEDULED, JobState.DEFERRED) or queue.is_waiting(runtime.queue, request_id):
            continue  # its job is where it should be
        queue.remove_job(runtime.queue, request_id)
        if queue.ensure_queued(runtime.queue, request_id, at=at if at is not None and at > now else None):
            requeued.append(request_id)
            log_line(
                logging.WARNING, "dropped job re-queued", request_id=request_id, status=delivery["status"]
            )
    return requeued


def requeue_lost_takes(runtime: Runtime, now: datetime | None = None) -> list[str]:
    """After a batch's take failed with Redis (its reply lost: the jobs were taken and marked
    started by this worker, and no batch holds them), run by the worker between jobs, when it
    holds nothing: every claimable delivery whose job says started by this worker and that it
    does not hold is queued again, at its next attempt. Reconcile would take them back only once
    they are older than any job may run (minutes). Returns the ids queued again."""
    now = now or datetime.now(UTC)
    report = ReconcileReport()
    held = runtime.holding_now()
    for page in _unfinished(runtime, CLAIMABLE_STATUSES, now):
        states = queue.job_states(runtime.queue, [row.request_id for row in page])
        for row, (state, worker) in zip(page, states, strict=True):
            if state == JobState.STARTED and worker == runtime.worker_name and row.request_id not in held:
                due = (
                    row.next_attempt_at
                    if row.next_attempt_at is not None and row.next_attempt_at > now
                    else None
                )
                _requeue(runtime, row, state, due, report)
    return report.requeued


def _requeue_orphans(runtime: Runtime, now: datetime, report: ReconcileReport) -> None:
    for page in _unfinished(runtime, CLAIMABLE_STATUSES, now - verdicts.ORPHAN_GRACE):
        _requeue_page(runtime, page, now, report)


def _requeue_page(runtime: Runtime, rows: list[Row[Any]], now: datetime, report: ReconcileReport) -> None:
    report.checked += len(rows)
    states = queue.job_states_started(runtime.queue, [row.request_id for row in rows])
    alive, leased = living(runtime, {w for (state, w, _at) in states if state == JobState.STARTED})
    timeout = queue.job_timeout(runtime.settings)
    queued = [
        row.request_id for row, (state, _w, _at) in zip(rows, states, strict=True) if state == JobState.QUEUED
    ]
    in_transit = queue.stranded_in_transit(runtime.queue, queued) if queued else set()
    for row, (state, worker, started) in zip(rows, states, strict=True):
        if row.request_id in in_transit:  # its job record says queued, but nobody will run it
            queue.leave_transit(runtime.queue, row.request_id)
            due = (
                row.next_attempt_at if row.next_attempt_at is not None and row.next_attempt_at > now else None
            )
            _requeue(runtime, row, state, due, report)
            continue
        worker_alive = verdicts.is_alive(worker, alive, leased)
        stranded = verdicts.is_stranded(state, worker_alive, started, now, timeout)
        verdict = verdicts.orphan_verdict(state, worker_alive, stranded, row.next_attempt_at, now)
        if verdict.action is verdicts.Action.MOVE_OVERDUE:
            if queue.move_overdue_to_queue(runtime.queue, row.request_id):
                report.overdue.append(row.request_id)
        elif verdict.action is verdicts.Action.REQUEUE:
            _requeue(runtime, row, state, verdict.at, report)


def _requeue(
    runtime: Runtime, row: Row[Any], state: str | None, at: datetime | None, report: ReconcileReport
) -> None:
    if state is not None:
        queue.remove_job(runtime.queue, row.request_id)
    if queue.ensure_queued(runtime.queue, row.request_id, at=at):
        report.requeued.append(row.request_id)
        log_line(
            logging.WARNING,
            "orphaned delivery re-queued",
            request_id=row.request_id,
            status=row.status,
            job=state or "missing",
        )


def reconcile(runtime: Runtime, now: datetime | None = None) -> ReconcileReport:
    """One pass over the unfinished deliveries; see the module docstring."""
    now = now or datetime.now(UTC)
    report = ReconcileReport()
    runtime.redis.ping()  # fail loudly, before reading anything, when Redis is away
    _recover_abandoned(runtime, now, report)
    _requeue_orphans(runtime, now, report)
    return report


def reconcile_if_due(runtime: Runtime, owner: str, every_seconds: int = 60) -> ReconcileReport | None:
    """Runs :func:`reconcile` when no other worker has within ``every_seconds`` (one at a time)."""
    return _locked(runtime, LOCK_KEY, owner, every_seconds, release=False)


def reconcile_now(runtime: Runtime, owner: str, gone: Iterable[str] = ()) -> ReconcileReport | None:
    """Runs :func:`reconcile` at once, unless another worker is running an urgent one (then
    None: the reason is seen again at a later beat). After a pass, the workers of ``gone``
    (found dead before it: no liveness key, no live lease), whose claims it recovered, are
    forgotten: out of the registry, their expired leases deleted, so each is reported once."""
    report = _locked(runtime, NOW_LOCK_KEY, owner, NOW_LOCK_SECONDS, release=True)
    if report is not None:
        forget_dead(runtime, gone)
    return report


def forget_dead(runtime: Runtime, workers: Iterable[str]) -> None:
    """Drops dead workers from the heartbeats' registry and deletes their leases that are still
    expired (one renewed meanwhile is kept; one renewed later is made again: renewing upserts)."""
    names = sorted(set(workers))
    if names:
        liveness.forget(runtime.redis, names)
        leases.forget(runtime.engine, names, datetime.now(UTC))


def _locked(runtime: Runtime, key: str, owner: str, seconds: int, release: bool) -> ReconcileReport | None:
    if not runtime.redis.set(key, owner, nx=True, ex=seconds):
        return None
    done = False
    try:
        report = reconcile(runtime)
        done = True
        return report
    finally:
        # A pass that failed (database or Redis away) must not keep others from trying soon.
        if release or not done:
            try:
                runtime.redis.delete(key)
            except Exception:  # noqa: BLE001 - Redis itself is away; the lock expires on its own
                pass
