"""Pruning: deleting old final deliveries and their attempt rows (``dispatcher prune``; no
click here), as the door :class:`Prune`. Queued, retrying and in-flight deliveries are never
touched, however old."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from .. import store
from ..runtime import Runtime
from ..times import format_utc
from ..vocabulary import FINAL_STATUSES, AuditAction
from .audit import described
from .bulk import BATCH_SIZE, Progress, deliveries
from .door import Door, Plan


@dataclass
class PruneReport:
    matched: int
    matched_by_status: dict[str, int]
    deleted: int
    attempts_deleted: int
    dry_run: bool
    cutoff: datetime
    statuses: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document: every field, in their order."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "statuses": list(self.statuses)}

    def counts(self) -> dict[str, int]:
        """The audit row's counts."""
        return {"matched": self.matched, "deleted": self.deleted, "attempts_deleted": self.attempts_deleted}


class Prune(Door[PruneReport]):
    """Deletes the deliveries in one of ``statuses`` (its final ones; none: every final status)
    last updated before ``cutoff``, with their attempts."""

    action = AuditAction.PRUNE

    def __init__(self, statuses: Sequence[str], cutoff: datetime, batch: int = BATCH_SIZE) -> None:
        chosen = tuple(s for s in statuses if s in FINAL_STATUSES) or FINAL_STATUSES
        self.selection = store.Selection(statuses=chosen, updated_before=cutoff)
        self.cutoff = cutoff
        self.batch = batch

    def plan(self, runtime: Runtime) -> Plan:
        """Counts the deliveries, per status (the plan's ``details``)."""
        counted = store.count_by_status(runtime.engine, self.selection)
        by_status = {s: counted.get(s, 0) for s in self.selection.statuses}
        matched = sum(by_status.values())
        when = f"last updated before {format_utc(self.cutoff)}"
        detail = ", ".join(f"{s}: {n:,}" for s, n in by_status.items())
        return Plan(
            action=self.action,
            count=matched,
            description=f"{deliveries(matched)} ({detail}) {when}"
            if matched
            else f"no deliveries ({', '.join(self.selection.statuses)}) {when}",
            selection=described(self.selection),
            details=by_status,
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> PruneReport:
        """Deletes a keyset page of deliveries (and their attempts) per transaction, oldest first."""
        report = self._report(plan, dry_run=False)
        statuses, cutoff = self.selection.statuses, self.cutoff
        for page in store.pages(
            runtime.engine, self.selection, order_by=("updated_at", "request_id"), batch=self.batch
        ):
            deleted, attempts = store.delete_final(
                runtime.engine, [row.request_id for row in page], statuses, cutoff
            )
            report.deleted += deleted
            report.attempts_deleted += attempts
            if progress:
                progress(len(page))
        return report

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> PruneReport:
        """The plan's counts as a report, deleting nothing (a preview is not audited)."""
        return self._report(plan, dry_run=dry_run)

    def _report(self, plan: Plan, *, dry_run: bool) -> PruneReport:
        by_status = {status: int(n) for status, n in plan.details.items()}
        return PruneReport(
            matched=sum(by_status.values()),
            matched_by_status=by_status,
            deleted=0,
            attempts_deleted=0,
            dry_run=dry_run,
            cutoff=self.cutoff,
            statuses=self.selection.statuses,
        )
