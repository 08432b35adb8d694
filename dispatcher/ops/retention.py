"""Applying the retention policy now: ``dispatcher retention run`` (no click here), as the door
:class:`RetentionRun`. The work is the workers' own (:mod:`dispatcher.worker.retention`, which
applies it hourly and audits its runs itself); this door plans it, runs it and audits it for an
operator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..config.settings import Settings
from ..runtime import Runtime
from ..vocabulary import AuditAction
from ..worker import retention as policy
from ..worker.retention import RetentionReport
from .bulk import Progress, deliveries
from .door import Door, Plan
from .storage import plural


@dataclass(frozen=True, kw_only=True)
class RetentionPlan(Plan):
    """A retention run's plan, with the policy's own account of it (cutoffs and counts)."""

    planned: RetentionReport


class RetentionRun(Door[RetentionReport]):
    """Erases the payloads past ``payload_days``, deletes the rows past ``rows_days`` (None:
    never) and the idempotency keys past ``idempotency_ttl`` seconds (None: not looked at)."""

    action = AuditAction.RETENTION_RUN

    def __init__(
        self, payload_days: int | None, rows_days: int | None, idempotency_ttl: float | None = None
    ) -> None:
        self.payload_days = payload_days
        self.rows_days = rows_days
        self.idempotency_ttl = idempotency_ttl

    @classmethod
    def configured(cls, settings: Settings) -> RetentionRun:
        """The policy the settings give (``retention`` and ``idempotency_ttl``)."""
        rules = settings.retention
        return cls(rules.payload_days, rules.rows_days, settings.idempotency_ttl_seconds)

    def plan(self, runtime: Runtime) -> RetentionPlan:
        """The cutoffs, and how many deliveries (the plan's count) and keys each would take."""
        planned = policy.plan(
            runtime.engine, self.payload_days, self.rows_days, idempotency_ttl=self.idempotency_ttl
        )
        return RetentionPlan(
            action=self.action,
            count=planned.to_erase + planned.to_delete,
            description=describe(planned),
            selection=planned.rules(),
            details={
                "to_erase": planned.to_erase,
                "to_delete": planned.to_delete,
                "idempotency_keys_to_delete": planned.idempotency_keys_to_delete,
            },
            planned=planned,
        )

    def run(self, runtime: Runtime, plan: Plan, progress: Progress | None = None) -> RetentionReport:
        """Applies the policy (its cutoffs taken afresh, as the workers do)."""
        return policy.apply(
            runtime.engine,
            self.payload_days,
            self.rows_days,
            progress=progress,
            idempotency_ttl=self.idempotency_ttl,
        )

    def nothing_to_do(self, plan: Plan) -> bool:
        """No delivery to erase or delete and no idempotency key to delete."""
        return not (plan.count or plan.details["idempotency_keys_to_delete"])

    def previewed(self, runtime: Runtime, plan: Plan, *, dry_run: bool) -> RetentionReport:
        """The policy's own account of the plan, changing nothing."""
        return replace(_retention_plan(plan).planned, dry_run=dry_run)

    def preview_audit(self, plan: Plan, *, dry_run: bool) -> Mapping[str, Any] | None:
        """A dry run is not audited; a run with nothing to do is, as a run is."""
        return None if dry_run else plan.selection


def _retention_plan(plan: Plan) -> RetentionPlan:
    """``plan``, which a :class:`RetentionRun` made."""
    if not isinstance(plan, RetentionPlan):
        raise TypeError("a RetentionRun previews the RetentionPlan its plan() made")
    return plan


def describe(report: RetentionReport) -> str:
    """What a run would do, in one sentence (the plan's description)."""
    parts = []
    if report.payload_days is None:
        parts.append("payloads are kept (retention.payload_days is null)")
    else:
        parts.append(f"{deliveries(report.to_erase)} final over {report.payload_days} days old to erase")
    if report.rows_days is None:
        parts.append("rows are kept (retention.rows_days is null)")
    else:
        parts.append(f"{deliveries(report.to_delete)} final over {report.rows_days} days old to delete")
    parts.append(
        f"{plural(report.idempotency_keys_to_delete, 'idempotency key')} past idempotency_ttl to delete"
    )
    return "; ".join(parts)
