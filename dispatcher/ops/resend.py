"""Re-sending failed deliveries, as two doors (:mod:`dispatcher.ops.door`): :class:`Retry` (by
request id: ``dispatcher retry ID``, the console's "Retry" on a delivery) and
:class:`RetryFailed` (the failed deliveries of a selection: ``retry --failed``, the console's
"retry the failed of this filter"). No click here; :mod:`dispatcher.cli.resend` is the command
line.

A re-sent delivery keeps its request id, gets a fresh attempt budget (its endpoint's
``max_attempts``) and is queued again; its next attempt carries ``retry: true``. Only a
``failed`` delivery whose payload is not erased is re-sent (:func:`judge` says so for one id;
:class:`RetryFailed` selects only those). The bulk form streams the matching deliveries in
keyset-paged batches, each one transaction plus one Redis pipeline, so memory stays flat
however many match.

A delivery whose endpoint is disabled is not re-opened (:mod:`dispatcher.intake.disabled`, the
rule every way in follows): ``retry ID`` is refused (``endpoint_disabled``), ``retry --failed``
skips it and counts it; ``dispatcher endpoints enable NAME`` re-sends what the endpoint held
back. An ordered delivery goes to the back of its key, numbered under the key's lock as a
dispatch is (:func:`dispatcher.store.ordering.renumber`).
"""

from __future__ import annotations

import logging
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

import redis

from .. import queue, store
from ..intake.disabled import disabled_endpoints, held_back
from ..logs import log_line
from ..runtime import Runtime
from ..vocabulary import AuditAction, DeliveryStatus, Reason
from .bulk import BATCH_SIZE, ID_CAP, IdList, Progress, deliveries
from .bulk_door import BulkDoor
from .door import Door, Plan


class RetryResult(StrEnum):
    """What retrying one request id did (or, in a plan, would do)."""

    REQUEUED = "requeued"
    MISSING = "missing"
    NOT_FAILED = "not_failed"
    ERASED = "erased"
    ENDPOINT_DISABLED = Reason.ENDPOINT_DISABLED.value


REQUEUED = RetryResult.REQUEUED
MISSING = RetryResult.MISSING
NOT_FAILED = RetryResult.NOT_FAILED
ERASED = RetryResult.ERASED
ENDPOINT_DISABLED = RetryResult.ENDPOINT_DISABLED


@dataclass(frozen=True)
class Verdict:
    """One request id's fate: what retrying it did (or would do), its status then, its endpoint."""

    request_id: str
    result: RetryResult
    status: str | None
    endpoint: str | None

    @property
    def retryable(self) -> bool:
        """``failed`` with its payload: re-queued, unless its endpoint is disabled."""
        return self.result in (RetryResult.REQUEUED, RetryResult.ENDPOINT_DISABLED)

    @property
    def why(self) -> str:
        """Why it is left alone (empty when it is not)."""
        return {
            RetryResult.REQUEUED: "",
            RetryResult.MISSING: "no such delivery",
            RetryResult.ERASED: "its payload was erased",
            RetryResult.NOT_FAILED: f"its status is {self.status}",
            RetryResult.ENDPOINT_DISABLED: f"endpoint {self.endpoint} is disabled",
        }[self.result]


def judge(runtime: Runtime, request_id: str, disabled: Container[str] | None = None) -> Verdict:
    """What retrying ``request_id`` would do now; reads only. ``disabled``: the disabled
    endpoints (read afresh when not given)."""
    delivery = store.get_delivery(runtime.engine, request_id)
    if delivery is None:
        return Verdict(request_id, RetryResult.MISSING, None, None)
    status, endpoint = delivery["status"], delivery["endpoint"]
    result = RetryResult.REQUEUED
    if delivery["payload_erased_at"] is not None:
        result = RetryResult.ERASED
    elif status != DeliveryStatus.FAILED:
        result = RetryResult.NOT_FAILED
    elif held_back(endpoint, disabled_endpoints(runtime, fresh=True) if disabled is None else disabled):
        result = RetryResult.ENDPOINT_DISABLED
    return Verdict(request_id, result, status, endpoint)


def retry_id(runtime: Runtime, request_id: str) -> Verdict:
    """Re-opens one failed delivery and queues it again, as :func:`judge` says; a delivery that
    stopped being ``failed`` meanwhile is left alone (``not_failed``)."""
    verdict = judge(runtime, request_id)
    if verdict.result == RetryResult.REQUEUED and not reopen_and_queue(runtime, request_id):
        return replace(verdict, result=RetryResult.NOT_FAILED)
    return verdict


def retry_one(runtime: Runtime, request_id: str) -> tuple[str, str | None]:
    """:func:`retry_id` as (``requeued`` | ``missing`` | ``not_failed`` | ``erased`` |
    ``endpoint_disabled``, the status it had)."""
    verdict = retry_id(runtime, request_id)
    return verdict.result, verdict.status


def reopen_and_queue(runtime: Runtime, request_id: str) -> bool:
    """Re-opens a failed delivery with a fresh attempt budget (its endpoint's ``max_attempts``)
    and queues it, clearing any job record it still has; False unless it was ``failed``."""
    budget = runtime.settings.delivery.max_attempts
    if not store.grant_retries(runtime.engine, [request_id], budget, runtime.settings.attempt_budgets()):
        return False
    queue.remove_job(runtime.queue, request_id)
    queue.ensure_queued(runtime.queue, request_id)
    return True


def queue_reopened(runtime: Runtime, request_ids: Sequence[str]) -> None:
    """Queues re-opened deliveries in one pipeline, clearing any job record they still have
    (a poison job in RQ's failed registry), as ``dispatcher retry ID`` does one by one."""
    if not request_ids:
        return
    states = queue.job_states(runtime.queue, list(request_ids))
    for request_id, (status, _worker) in zip(request_ids, states, strict=True):
        if status is not None:
            queue.remove_job(runtime.queue, request_id)
    queue.enqueue_new(runtime.queue, request_ids)


# --- by request id ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPlan(Plan):
    """A :class:`Retry`'s plan, with each request id's :class:`Verdict` as it stands now."""

    verdicts: tuple[Verdict, ...] = ()


@dataclass(frozen=True)
class RetryOutcome:
    """What a :class:`Retry` did with each request id, in the order given."""

    verdicts: tuple[Verdict, ...]

    @property
    def requeued(self) -> int:
        return sum(1 for v in self.verdicts if v.result == RetryResult.REQUEUED)

    @property
    def left_alone(self) -> int:
        return len(self.verdicts) - self.requeued

    def counts(self) -> Mapping[str, Any]:
        return {"requeued": self.requeued, "left_alone": self.left_alone}


class Retry(Door[RetryOutcome]):
    """Re-queue failed deliveries by request id (``dispatcher retry ID...``, the console's retry
    of one delivery). The plan's count is how many are ``failed`` with their payload."""

    action = AuditAction.RETRY

    def __init__(self, request_ids: Sequence[str]) -> None:
        self.request_ids = tuple(request_ids)

    def plan(self, runtime: Runtime) -> RetryPlan:
        disabled = disabled_endpoints(runtime, fresh=True)
        verdicts = tuple(judge(runtime, request_id, disabled) for request_id in self.request_ids)
        count = sum(1 for v in verdicts if v.retryable)
        if len(verdicts) == 1 and verdicts[0].endpoint:
            description = f"Re-queue {verdicts[0].request_id} to {verdicts[0].endpoint}: same request id"
        else:
            description = (
                f"Re-queue {deliveries(count, 'failed')} of {len(verdicts):,} given: same request ids"
            )
        return RetryPlan(
            action=self.action,
            count=count,
            description=f"{description}, retry: true, a fresh attempt budget",
            selection={"request_ids": list(self.request_ids)[:ID_CAP]},
            notes=tuple(f"{v.request_id} is left alone: {v.why}" for v in verdicts if v.why),
            verdicts=verdicts,
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> RetryOutcome:
        verdicts = []
        for request_id in self.request_ids:
            verdicts.append(retry_id(runtime, request_id))
            if progress:
                progress(1)
        return RetryOutcome(tuple(verdicts))


# --- the failed of a selection ---------------------------------------------------------------


@dataclass
class RetryReport:
    matched: int
    dry_run: bool
    requeued: int = 0
    awaiting_reconcile: int = 0
    redis_error: str | None = None
    ids: IdList = field(default_factory=IdList)
    skipped_endpoint_disabled: int = 0
    """Left failed: their endpoint is disabled."""
    disabled_endpoints: set[str] = field(default_factory=set)
    """The disabled endpoints of those."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "requeued": self.requeued,
            "dry_run": self.dry_run,
            "awaiting_reconcile": self.awaiting_reconcile,
            "request_ids": self.ids.items,
            "request_ids_truncated": self.ids.truncated,
            "skipped_endpoint_disabled": self.skipped_endpoint_disabled,
        }

    counted: ClassVar[tuple[str, ...]] = (
        "matched",
        "requeued",
        "awaiting_reconcile",
        "skipped_endpoint_disabled",
    )
    """What the audit row counts."""

    def counts(self) -> Mapping[str, Any]:
        return {key: getattr(self, key) for key in self.counted}


class RetryFailed(BulkDoor[RetryReport]):
    """Re-queue every ``failed`` delivery of a selection whose payload is not erased
    (``selection.statuses`` and ``with_payload`` are set so). The plan counts them, and notes
    how many failed ones were erased and are left alone."""

    action = AuditAction.RETRY

    def __init__(self, selection: store.Selection, *, batch: int = BATCH_SIZE) -> None:
        self.selection = replace(selection, statuses=(DeliveryStatus.FAILED,), with_payload=True)
        self.batch = batch

    def plan(self, runtime: Runtime) -> Plan:
        matched = store.count(runtime.engine, self.selection)
        erased = store.count(runtime.engine, replace(self.selection, with_payload=False)) - matched
        erased_note = f"{deliveries(erased, 'failed')} whose payload was erased cannot be re-sent; left alone"
        return self.planned(
            matched,
            f"Re-queue {deliveries(matched)} "
            "(same request ids, each with a fresh attempt budget: its endpoint's max_attempts)",
            notes=(erased_note,) if erased else (),
            details={"erased": erased},
        )

    def report(self, matched: int, ids: IdList, *, dry_run: bool) -> RetryReport:
        return RetryReport(matched=matched, dry_run=dry_run, ids=ids)

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> RetryReport:
        return retry_failed(
            runtime, self.selection, matched=plan.count or 0, progress=progress, batch=self.batch
        )


def retry_failed(
    runtime: Runtime,
    selection: store.Selection,
    *,
    matched: int,
    progress: Progress | None = None,
    batch: int = BATCH_SIZE,
) -> RetryReport:
    """Re-queues every selected ``failed`` delivery (``selection.statuses`` is forced to failed).

    Each batch is re-opened in one transaction, then queued in one Redis pipeline. When Redis
    refuses, the re-opened deliveries are already durable as ``queued`` and reconcile queues
    them (workers run it every minute); the rest of the run then skips Redis and counts them in
    ``awaiting_reconcile``. Deliveries to a disabled endpoint (read again for each batch) are
    left failed and counted in ``skipped_endpoint_disabled``.
    """
    selection = replace(selection, statuses=(DeliveryStatus.FAILED,), with_payload=True)
    report = RetryReport(matched=matched, dry_run=False)
    for page in store.pages(runtime.engine, selection, ("request_id", "endpoint"), batch=batch):
        _retry_page(runtime, page, report)
        if progress:
            progress(len(page))
    return report


def _retry_page(runtime: Runtime, page: Sequence[Any], report: RetryReport) -> None:
    """Re-opens and queues one page of failed deliveries, adding to ``report``."""
    disabled = disabled_endpoints(runtime, fresh=True)
    held = [row for row in page if held_back(row.endpoint, disabled)]
    report.skipped_endpoint_disabled += len(held)
    report.disabled_endpoints.update(row.endpoint for row in held)
    reopened = store.grant_retries(
        runtime.engine,
        [row.request_id for row in page if not held_back(row.endpoint, disabled)],
        runtime.settings.delivery.max_attempts,
        runtime.settings.attempt_budgets(),
    )
    if reopened and report.redis_error is None:
        try:
            queue_reopened(runtime, reopened)
        except redis.RedisError as exc:
            report.redis_error = f"{type(exc).__name__}: {exc}"
            log_line(
                logging.WARNING,
                "redis unavailable during retry --failed; re-opened deliveries will be queued by reconcile",
                error=report.redis_error,
            )
    if report.redis_error is not None:
        report.awaiting_reconcile += len(reopened)
    report.requeued += len(reopened)
    report.ids.extend(reopened)
