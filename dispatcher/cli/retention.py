"""``dispatcher retention run``: apply the retention policy now (workers apply it on their own)."""

from __future__ import annotations

import click

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
    from ..ops.door import Actor
    from ..ops.retention import RetentionRun
    from ..runtime import get_runtime
    from .prune import carry_out, show

    rt = get_runtime()
    door = RetentionRun.configured(rt.settings)
    plan = door.plan(rt)
    if dry_run or plan.nothing_to_do:
        said = "; dry run, nothing was changed" if dry_run else "; nothing to do"
        show(door.preview(rt, Actor.cli(), plan, dry_run=dry_run), as_json, plan.description + said)
        return
    report = carry_out(door, rt, plan, "retention", as_json)
    show(
        report,
        as_json,
        f"erased the payloads of {deliveries(report.erased)} ({plural(report.attempts_erased, 'attempt')}); "
        f"deleted {deliveries(report.deleted)} and {plural(report.attempts_deleted, 'attempt row')}; "
        f"deleted {plural(report.idempotency_keys_deleted, 'expired idempotency key')}",
    )
