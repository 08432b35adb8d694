"""``dispatcher prune``: delete old final deliveries and their attempt rows."""

from __future__ import annotations

from datetime import datetime

import click

from ..times import format_utc
from ..vocabulary import FINAL_STATUSES
from .output import confirm, deliveries, plural, progress, say, to_json
from .params import MOMENT


@click.command("prune")
@click.option(
    "--older-than",
    type=MOMENT,
    required=True,
    help="Last updated more than this long ago (30d, 12h, 90m) or before an ISO 8601 time.",
)
@click.option(
    "--status",
    type=click.Choice(FINAL_STATUSES),
    help="Only deliveries in this final status (default: delivered and failed).",
)
@click.option("--dry-run", is_flag=True, help="Count, delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def prune_command(older_than: datetime, status: str | None, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete old deliveries in a final state (delivered, failed) and their attempt rows.

    Queued, retrying and in-flight deliveries are never touched, however old.
    """
    from .. import store
    from ..ops import audit
    from ..ops import prune as pruning
    from ..runtime import get_runtime

    rt = get_runtime()
    selection = pruning.prune_selection([status] if status else FINAL_STATUSES, older_than)
    counted = store.count_by_status(rt.engine, selection)
    by_status = {s: counted.get(s, 0) for s in selection.statuses}
    matched = sum(by_status.values())
    detail = ", ".join(f"{s}: {n:,}" for s, n in by_status.items())
    what = f"{deliveries(matched)} ({detail}) last updated before {format_utc(older_than)}"
    if matched == 0 or dry_run:
        report = pruning.prune(rt.engine, selection, matched_by_status=by_status, dry_run=True)
        if as_json:
            click.echo(to_json({**report.as_dict(), "dry_run": dry_run}))
        elif matched == 0:
            click.echo(
                f"no deliveries ({', '.join(selection.statuses)}) last updated before {format_utc(older_than)}"
            )
        else:
            click.echo(f"{what}; dry run, nothing was deleted")
        return
    say(what, as_json)
    if not yes:
        confirm("Delete them and their attempt rows?")
    with progress("pruning", matched) as advance:
        report = pruning.prune(rt.engine, selection, matched_by_status=by_status, progress=advance)
    audit.record(
        rt.engine,
        "prune",
        audit.described(selection),
        {"matched": matched, "deleted": report.deleted, "attempts_deleted": report.attempts_deleted},
    )
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(
            f"deleted {deliveries(report.deleted)} and {plural(report.attempts_deleted, 'attempt row')}"
        )
