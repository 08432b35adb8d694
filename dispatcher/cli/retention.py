"""``dispatcher retention run``: apply the retention policy now (workers apply it on their own)."""

from __future__ import annotations

import click

from .doors import Asked, preview_line, run_door
from .output import deliveries, plural


@click.group("retention")
def retention() -> None:
    """How long the log keeps payloads and rows (the config's ``retention``)."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be erased and deleted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def run(dry_run: bool, as_json: bool) -> None:
    """Erase the payloads of final deliveries older than retention.payload_days, delete the
    rows older than retention.rows_days and the idempotency keys older than idempotency_ttl,
    now. Deliveries still to be sent are never touched."""
    from ..ops.retention import RetentionRun
    from ..runtime import get_runtime

    rt = get_runtime()
    door = RetentionRun.configured(rt.settings)
    plan = door.plan(rt)
    run_door(
        rt,
        door,
        plan,
        Asked(dry_run=dry_run, as_json=as_json),
        bar="retention",
        previewed=lambda _: preview_line(plan, dry_run),
        done=lambda report: (
            f"erased the payloads of {deliveries(report.erased)} ({plural(report.attempts_erased, 'attempt')}); "
            f"deleted {deliveries(report.deleted)} and {plural(report.attempts_deleted, 'attempt row')}; "
            f"deleted {plural(report.idempotency_keys_deleted, 'expired idempotency key')}"
        ),
    )
