"""Re-sending failed deliveries: ``dispatcher retry ID`` and ``retry --failed`` (no click here;
:mod:`dispatcher.cli.resend` is the command line).

A re-sent delivery keeps its request id, gets a fresh attempt budget (its endpoint's
``max_attempts``) and is queued again; its next attempt carries ``retry: true``. The bulk form
streams the matching deliveries in keyset-paged batches, each one transaction plus one Redis
pipeline, so memory stays flat however many match.

A delivery whose endpoint is disabled is not re-opened (:mod:`dispatcher.intake.disabled`, the
rule every way in follows): ``retry ID`` is refused (``endpoint_disabled``), ``retry --failed``
skips it and counts it; ``dispatcher endpoints enable NAME`` re-sends what the endpoint held
back. An ordered delivery goes to the back of its key, numbered under the key's lock as a
dispatch is (:func:`dispatcher.store.ordering.renumber`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import redis

from .. import queue, store
from ..intake.disabled import disabled_endpoints, held_back
from ..logs import log_line
from ..runtime import Runtime
from ..vocabulary import DeliveryStatus, Reason
from .bulk import BATCH_SIZE, ID_CAP, IdList, Progress

REQUEUED = "requeued"
MISSING = "missing"
NOT_FAILED = "not_failed"
ERASED = "erased"
ENDPOINT_DISABLED = Reason.ENDPOINT_DISABLED


def retry_one(runtime: Runtime, request_id: str) -> tuple[str, str | None]:
    """``dispatcher retry ID``: re-opens one failed delivery and queues it again.

    Returns (``requeued`` | ``missing`` | ``not_failed`` | ``erased`` | ``endpoint_disabled``,
    the status it had).
    """
    delivery = store.get_delivery(runtime.engine, request_id)
    if delivery is None:
        return MISSING, None
    if delivery["payload_erased_at"] is not None:
        return ERASED, delivery["status"]
    if delivery["status"] != DeliveryStatus.FAILED:
        return NOT_FAILED, delivery["status"]
    if held_back(delivery["endpoint"], disabled_endpoints(runtime, fresh=True)):
        return ENDPOINT_DISABLED, delivery["status"]
    if not reopen_and_queue(runtime, request_id):
        return NOT_FAILED, delivery["status"]
    return REQUEUED, delivery["status"]


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


def retry_failed(
    runtime: Runtime,
    selection: store.Selection,
    *,
    matched: int,
    dry_run: bool = False,
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
    report = RetryReport(matched=matched, dry_run=dry_run)
    if dry_run:
        report.ids.extend([row["request_id"] for row in store.first_rows(runtime.engine, selection, ID_CAP)])
        report.ids.truncated = matched > len(report.ids.items)
        return report
    settings = runtime.settings
    for page in store.pages(runtime.engine, selection, ("request_id", "endpoint"), batch=batch):
        disabled = disabled_endpoints(runtime, fresh=True)
        held = [row for row in page if held_back(row.endpoint, disabled)]
        report.skipped_endpoint_disabled += len(held)
        report.disabled_endpoints.update(row.endpoint for row in held)
        reopened = store.grant_retries(
            runtime.engine,
            [row.request_id for row in page if not held_back(row.endpoint, disabled)],
            settings.delivery.max_attempts,
            settings.attempt_budgets(),
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
        if progress:
            progress(len(page))
    return report
