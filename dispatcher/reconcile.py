"""Reconcile: make every unfinished delivery in the database have a live job in Redis.

Finds, and repairs:

* **abandoned** deliveries: ``in_flight`` under a worker whose liveness key has expired (killed,
  host lost). The cut-short attempt is recorded as ``interrupted`` and the delivery re-queued at
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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rq.job import JobStatus

from . import metrics, queue, spool, store
from .logs import log_line
from .runtime import Runtime

ALIVE_KEY = "dispatcher:worker-alive:{name}"
ALIVE_TTL = 30
"""Seconds a worker's liveness key lives; each worker refreshes it every few seconds."""
LOCK_KEY = "dispatcher:reconcile-lock"
ORPHAN_GRACE = timedelta(seconds=20)
"""A queued row younger than this may still be on its way to Redis (dispatch in progress)."""
ABANDON_GRACE = timedelta(seconds=10)
OVERDUE_GRACE = timedelta(seconds=30)
OWN_CLAIM_GRACE = timedelta(seconds=60)
"""A worker looks at its own claims older than this (a job records its claims as it makes them)."""
STRANDED_SLACK_SECONDS = 60
"""A job started longer ago than RQ's job timeout plus this is no longer being run by anyone."""


@dataclass
class ReconcileReport:
    checked: int = 0
    abandoned: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "checked": self.checked,
            "abandoned": self.abandoned,
            "requeued": self.requeued,
            "overdue": self.overdue,
        }


def alive_key(worker: str) -> str:
    return ALIVE_KEY.format(name=worker)


def mark_alive(runtime: Runtime, worker: str) -> None:
    runtime.redis.set(alive_key(worker), "1", ex=ALIVE_TTL)


def mark_dead(runtime: Runtime, worker: str) -> None:
    runtime.redis.delete(alive_key(worker))


def _alive_workers(runtime: Runtime, workers: set[str]) -> set[str]:
    names = sorted(workers)
    if not names:
        return set()
    flags = runtime.redis.mget([alive_key(n) for n in names])
    return {name for name, flag in zip(names, flags, strict=True) if flag is not None}


def _recover_abandoned(runtime: Runtime, now: datetime, report: ReconcileReport) -> None:
    candidates = list(store.deliveries_by_status(runtime.engine, [store.IN_FLIGHT], now - ABANDON_GRACE))
    alive = _alive_workers(runtime, {c["worker"] for c in candidates if c["worker"]})
    for row in candidates:
        if row["worker"] in alive:
            continue  # a live worker holds it, however long the database keeps it waiting
        _recover(runtime, row["request_id"], now, report)


def _recover(runtime: Runtime, request_id: str, now: datetime, report: ReconcileReport) -> None:
    """Records the claim's cut-short attempt as ``interrupted`` and queues the delivery again."""
    delivery = store.get_delivery(runtime.engine, request_id)
    if delivery is None or delivery["status"] != store.IN_FLIGHT:
        return
    record = store.AttemptRecord(
        request_id=delivery["request_id"],
        event=delivery["event"],
        endpoint=delivery["endpoint"],
        url=delivery["url"],
        attempt=delivery["attempts"],
        outcome=store.INTERRUPTED,
        created_at=now,
        error=f"worker {delivery['worker']} stopped holding the claim; the POST may or may not have been sent",
        next_attempt_at=now,
    )
    if not store.record_attempt(runtime.engine, record, delivery["worker"]):
        return
    metrics.record_attempt(delivery["event"], delivery["endpoint"], store.INTERRUPTED, None)
    queue.remove_job(runtime.queue, delivery["request_id"])
    queue.ensure_queued(runtime.queue, delivery["request_id"])
    report.abandoned.append(delivery["request_id"])
    log_line(
        logging.WARNING,
        "interrupted attempt recovered",
        request_id=delivery["request_id"],
        event=delivery["event"],
        endpoint=delivery["endpoint"],
        attempt=delivery["attempts"],
        outcome=store.INTERRUPTED,
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


def _requeue_orphans(runtime: Runtime, now: datetime, report: ReconcileReport) -> None:
    rows = store.deliveries_by_status(runtime.engine, store.CLAIMABLE, now - ORPHAN_GRACE)
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 500:
            _requeue_batch(runtime, batch, now, report)
            batch = []
    if batch:
        _requeue_batch(runtime, batch, now, report)


def _requeue_batch(runtime: Runtime, rows: list[dict], now: datetime, report: ReconcileReport) -> None:
    report.checked += len(rows)
    states = queue.job_states_started(runtime.queue, [r["request_id"] for r in rows])
    alive = _alive_workers(runtime, {w for (status, w, _at) in states if status == JobStatus.STARTED and w})
    stranded = _stranded(runtime, rows, states, alive, now)
    for row, (status, worker, _started) in zip(rows, states, strict=True):
        request_id = row["request_id"]
        due = row["next_attempt_at"]
        if status == JobStatus.SCHEDULED and due is not None and due < now - OVERDUE_GRACE:
            if queue.move_overdue_to_queue(runtime.queue, request_id):
                report.overdue.append(request_id)
            continue
        if (
            status in queue.ACTIVE_STATUSES
            and not (status == JobStatus.STARTED and worker not in alive)
            and request_id not in stranded
        ):
            continue
        if status is not None:
            queue.remove_job(runtime.queue, request_id)
        at = due if due is not None and due > now else None
        if queue.ensure_queued(runtime.queue, request_id, at=at):
            report.requeued.append(request_id)
            log_line(
                logging.WARNING,
                "orphaned delivery re-queued",
                request_id=request_id,
                status=row["status"],
                job=status or "missing",
            )


def _stranded(
    runtime: Runtime,
    rows: list[dict],
    states: list[tuple[str | None, str | None, datetime | None]],
    alive: set[str],
    now: datetime,
) -> set[str]:
    """Deliveries (not in flight: ``rows`` are queued or retrying) whose job a live worker marked
    started longer ago than an RQ job may run: no batch holds them any more."""
    cutoff = now - timedelta(seconds=queue.job_timeout(runtime.settings) + STRANDED_SLACK_SECONDS)
    return {
        row["request_id"]
        for row, (status, worker, started) in zip(rows, states, strict=True)
        if status == JobStatus.STARTED and worker in alive and started is not None and started < cutoff
    }


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
    if not runtime.redis.set(LOCK_KEY, owner, nx=True, ex=every_seconds):
        return None
    try:
        return reconcile(runtime)
    except Exception:
        # A pass that failed (database or Redis away) must not keep others from trying soon.
        try:
            runtime.redis.delete(LOCK_KEY)
        except Exception:  # noqa: BLE001 - Redis itself is away; the lock expires on its own
            pass
        raise
