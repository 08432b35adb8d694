"""``dispatcher retention run``: apply the retention policy now (workers apply it on their own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from .output import deliveries, plural, progress, say, to_json

if TYPE_CHECKING:
    from ..config.settings import RetentionSettings
    from ..worker.retention import RetentionReport


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
    from ..ops import audit
    from ..runtime import get_runtime
    from ..worker import retention as policy

    rt = get_runtime()
    rules = rt.settings.retention
    ttl = rt.settings.idempotency_ttl_seconds
    planned = policy.plan(rt.engine, rules.payload_days, rules.rows_days, idempotency_ttl=ttl)
    if dry_run or not (planned.to_erase or planned.to_delete or planned.idempotency_keys_to_delete):
        planned.dry_run = dry_run
        if not dry_run:
            audit.record(rt.engine, "retention run", _rules(rules), planned.counts())
        if as_json:
            click.echo(to_json(planned.as_dict()))
        else:
            click.echo(
                _plan_text(planned) + ("; dry run, nothing was changed" if dry_run else "; nothing to do")
            )
        return
    say(_plan_text(planned), as_json)
    with progress("retention", planned.to_erase + planned.to_delete) as advance:
        report = policy.apply(
            rt.engine, rules.payload_days, rules.rows_days, progress=advance, idempotency_ttl=ttl
        )
    audit.record(rt.engine, "retention run", _rules(rules), report.counts())
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(
            f"erased the payloads of {deliveries(report.erased)} ({plural(report.attempts_erased, 'attempt')}); "
            f"deleted {deliveries(report.deleted)} and {plural(report.attempts_deleted, 'attempt row')}; "
            f"deleted {plural(report.idempotency_keys_deleted, 'expired idempotency key')}"
        )


def _rules(rules: RetentionSettings) -> dict[str, Any]:
    return {"payload_days": rules.payload_days, "rows_days": rules.rows_days}


def _plan_text(report: RetentionReport) -> str:
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
