"""Retention: what the log keeps, and for how long (``retention`` in the config). Workers apply
it on their own (:func:`apply_if_due`: about once an hour, one worker at a time across hosts, a
few seconds of work per housekeeping round); ``dispatcher retention run`` applies it now
(through the door :class:`dispatcher.ops.retention.RetentionRun`).

A final delivery (delivered or failed) last updated more than ``payload_days`` ago has its PHI
erased: its payload and its attempts' request payloads, response bodies and errors (a
partner's answer is PHI too)
(:mod:`dispatcher.store.erasure`); the row stays. A final delivery last updated more than
``rows_days`` ago is deleted with its attempts, as ``dispatcher prune`` does. Deliveries still
to be sent are never touched, however old. An idempotency key recorded more than
``idempotency_ttl`` ago is deleted (it is free again: a dispatch with it makes new deliveries),
whatever ``retention`` says, so the keys' table holds about one TTL of keys. Each batch (at
most 1,000 rows) is its own short transaction, so deliveries never wait on retention.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from .. import store
from ..runtime import Runtime
from ..store import audit, erasure, idempotency
from ..times import utcnow
from ..vocabulary import FINAL_STATUSES, PENDING_STATUSES, AuditAction

BATCH_SIZE = 1000
"""Rows per transaction."""
EVERY_SECONDS = 3600
"""How often the workers apply the policy (one of them at a time)."""
BUDGET_SECONDS = 5.0
"""The most one housekeeping round spends on it; the next round goes on where it stopped."""
DUE_KEY = "dispatcher:retention:due"
"""Set (with a TTL of :data:`EVERY_SECONDS`) by the worker that applies the policy."""

Progress = Callable[[int], None]
"""Called after each batch with the number of deliveries it handled."""
Stop = Callable[[], bool]
"""Says whether the time budget is spent (checked after each batch)."""


@dataclass
class RetentionReport:
    payload_days: int | None
    rows_days: int | None
    payload_cutoff: datetime | None
    rows_cutoff: datetime | None
    dry_run: bool
    to_delete: int = 0
    to_erase: int = 0
    deleted: int = 0
    attempts_deleted: int = 0
    erased: int = 0
    attempts_erased: int = 0
    finished: bool = True
    """False when a time budget ended the run with rows still to do (the next run goes on)."""
    idempotency_keys_cutoff: datetime | None = None
    """Idempotency keys recorded before this are past ``idempotency_ttl`` (None: not looked at)."""
    idempotency_keys_to_delete: int = 0
    idempotency_keys_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document: every field, in their order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def counts(self) -> dict[str, int]:
        """The audit row's counts: the numbers of :meth:`as_dict`."""
        return {k: v for k, v in self.as_dict().items() if isinstance(v, int) and not isinstance(v, bool)}

    def done(self) -> dict[str, Any]:
        """What a run changed, for the process log; empty when it changed nothing."""
        changed = {
            "erased": self.erased,
            "deleted": self.deleted,
            "idempotency_keys_deleted": self.idempotency_keys_deleted,
        }
        return {**changed, "finished": self.finished} if any(changed.values()) else {}

    def rules(self) -> dict[str, Any]:
        """The audit row's selection: the policy applied."""
        return {"payload_days": self.payload_days, "rows_days": self.rows_days}


def plan(
    engine: Engine,
    payload_days: int | None,
    rows_days: int | None,
    now: datetime | None = None,
    idempotency_ttl: float | None = None,
) -> RetentionReport:
    """What a run would do now: the cutoffs, and how many deliveries each would take (and
    how many idempotency keys are past ``idempotency_ttl`` seconds; None: not looked at)."""
    now = now or utcnow()
    report = RetentionReport(
        payload_days=payload_days,
        rows_days=rows_days,
        payload_cutoff=now - timedelta(days=payload_days) if payload_days is not None else None,
        rows_cutoff=now - timedelta(days=rows_days) if rows_days is not None else None,
        dry_run=True,
    )
    if idempotency_ttl is not None:
        report.idempotency_keys_cutoff = now - timedelta(seconds=idempotency_ttl)
        report.idempotency_keys_to_delete = idempotency.count_expired(engine, report.idempotency_keys_cutoff)
    if report.rows_cutoff is not None:
        old = store.count(engine, store.Selection(updated_before=report.rows_cutoff))
        report.to_delete = old - store.count(engine, _old_rows(report.rows_cutoff, PENDING_STATUSES))
    if report.payload_cutoff is not None:
        report.to_erase = erasure.count_erasable_before(engine, report.payload_cutoff)
    return report


def _old_rows(cutoff: datetime, statuses: tuple[str, ...] = ()) -> store.Selection:
    """Rows last updated before ``cutoff`` (in ``statuses``). Final ones are picked out of the
    old rows by the caller: a condition on the final statuses would lead the planner to the
    status index, which spans every final delivery, instead of the index by age."""
    return store.Selection(statuses=statuses, updated_before=cutoff)


def apply(
    engine: Engine,
    payload_days: int | None,
    rows_days: int | None,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    budget_seconds: float | None = None,
    batch: int = BATCH_SIZE,
    idempotency_ttl: float | None = None,
) -> RetentionReport:
    """Deletes the idempotency keys past ``idempotency_ttl`` seconds, the rows past
    ``rows_days``, then erases the payloads past ``payload_days`` (None: never). With
    ``budget_seconds``, stops after the batch that passes it."""
    report = plan(engine, payload_days, rows_days, now, idempotency_ttl)
    report.dry_run = dry_run
    if dry_run:
        return report
    deadline = time.monotonic() + budget_seconds if budget_seconds is not None else None

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    if not (
        _delete_expired_keys(engine, report, batch, out_of_time)
        and _delete_old_rows(engine, report, batch, out_of_time, progress)
    ):
        report.finished = False
        return report
    report.finished = _erase_old_payloads(engine, report, batch, out_of_time, progress, now or utcnow())
    if report.erased or report.deleted:
        erasure.compact(engine)
    return report


def _delete_expired_keys(engine: Engine, report: RetentionReport, batch: int, stop: Stop) -> bool:
    """Deletes the idempotency keys past their TTL; False when time ran out with keys left."""
    if report.idempotency_keys_cutoff is None:
        return True
    report.idempotency_keys_deleted = idempotency.delete_expired(
        engine, report.idempotency_keys_cutoff, batch, stop=stop
    )
    return report.idempotency_keys_deleted >= report.idempotency_keys_to_delete or not stop()


def _delete_old_rows(
    engine: Engine, report: RetentionReport, batch: int, stop: Stop, progress: Progress | None
) -> bool:
    """Deletes the final deliveries past ``rows_days`` with their attempts, oldest first;
    False when time ran out (after a batch)."""
    if report.rows_cutoff is None:
        return True
    by_age = ("updated_at", "request_id")
    old = _old_rows(report.rows_cutoff)
    for page in store.pages(engine, old, ("request_id", "status"), order_by=by_age, batch=batch):
        final = [row.request_id for row in page if row.status in FINAL_STATUSES]
        deleted, attempts = store.delete_final(engine, final, FINAL_STATUSES, report.rows_cutoff)
        report.deleted += deleted
        report.attempts_deleted += attempts
        if progress:
            progress(len(final))
        if stop():
            return False
    return True


def _erase_old_payloads(
    engine: Engine,
    report: RetentionReport,
    batch: int,
    stop: Stop,
    progress: Progress | None,
    stamp: datetime,
) -> bool:
    """Erases the PHI of the final deliveries past ``payload_days``, oldest first; False when
    time ran out (after a batch)."""
    if report.payload_cutoff is None:
        return True
    for ids in erasure.erasable(engine, report.payload_cutoff, batch):
        erased = erasure.erase(engine, ids, stamp)
        report.erased += erased.deliveries
        report.attempts_erased += erased.attempts
        if progress:
            progress(len(ids))
        if stop():
            return False
    return True


def apply_if_due(runtime: Runtime) -> RetentionReport | None:
    """Applies the policy, and deletes the idempotency keys past ``idempotency_ttl`` (even when
    the policy keeps every delivery), unless another worker did within :data:`EVERY_SECONDS`,
    for at most :data:`BUDGET_SECONDS`; a run that did not finish leaves it due, so the next
    round (on any worker) goes on. A run that erased or deleted deliveries writes an audit row
    with the worker as actor (deleting expired idempotency keys alone does not)."""
    rules = runtime.settings.retention
    if not runtime.redis.set(DUE_KEY, runtime.worker_name, nx=True, ex=EVERY_SECONDS):
        return None
    try:
        report = apply(
            runtime.engine,
            rules.payload_days,
            rules.rows_days,
            budget_seconds=BUDGET_SECONDS,
            idempotency_ttl=runtime.settings.idempotency_ttl_seconds,
        )
    except Exception:
        runtime.redis.delete(DUE_KEY)  # failed (the database away): due again at once
        raise
    if not report.finished:
        runtime.redis.delete(DUE_KEY)
    if report.erased or report.deleted:
        actor = f"worker {runtime.worker_name}"
        audit.record(runtime.engine, actor, AuditAction.RETENTION_RUN, report.rules(), report.counts())
    return report
