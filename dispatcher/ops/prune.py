"""Pruning: deleting old final deliveries and their attempt rows (``dispatcher prune``; no
click here). Queued, retrying and in-flight deliveries are never touched, however old."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from .. import store
from ..vocabulary import FINAL_STATUSES
from .bulk import BATCH_SIZE, Progress


@dataclass
class PruneReport:
    matched: int
    matched_by_status: dict[str, int]
    cutoff: datetime
    statuses: tuple[str, ...]
    dry_run: bool
    deleted: int = 0
    attempts_deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "matched_by_status": self.matched_by_status,
            "deleted": self.deleted,
            "attempts_deleted": self.attempts_deleted,
            "dry_run": self.dry_run,
            "cutoff": self.cutoff,
            "statuses": list(self.statuses),
        }


def prune_selection(statuses: Sequence[str], cutoff: datetime) -> store.Selection:
    chosen = tuple(s for s in statuses if s in FINAL_STATUSES) or FINAL_STATUSES
    return store.Selection(statuses=chosen, updated_before=cutoff)


def prune(
    engine: Engine,
    selection: store.Selection,
    *,
    matched_by_status: dict[str, int],
    dry_run: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH_SIZE,
) -> PruneReport:
    """Deletes the selected final deliveries (see :func:`prune_selection`) and their attempts."""
    if selection.updated_before is None or not set(selection.statuses) <= set(FINAL_STATUSES):
        raise ValueError("prune takes only final statuses and needs a cutoff")
    report = PruneReport(
        matched=sum(matched_by_status.values()),
        matched_by_status=matched_by_status,
        cutoff=selection.updated_before,
        statuses=selection.statuses,
        dry_run=dry_run,
    )
    if dry_run:
        return report
    for page in store.pages(engine, selection, order_by=("updated_at", "request_id"), batch=batch):
        deleted, attempts = store.delete_final(
            engine, [row.request_id for row in page], selection.statuses, selection.updated_before
        )
        report.deleted += deleted
        report.attempts_deleted += attempts
        if progress:
            progress(len(page))
    return report
