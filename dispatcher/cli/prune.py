"""``dispatcher prune``: delete old final deliveries and their attempt rows."""

from __future__ import annotations

from datetime import datetime

import click

from ..vocabulary import FINAL_STATUSES
from .doors import Asked, run_door
from .output import deliveries, plural
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
    from ..ops.prune import Prune
    from ..runtime import get_runtime

    door = Prune([status] if status else FINAL_STATUSES, older_than)
    rt = get_runtime()
    plan = door.plan(rt)
    run_door(
        rt,
        door,
        plan,
        Asked(dry_run, yes, as_json),
        bar="pruning",
        question="Delete them and their attempt rows?",
        previewed=lambda _: plan.description + ("; dry run, nothing was deleted" if plan.count else ""),
        done=lambda report: (
            f"deleted {deliveries(report.deleted)} and {plural(report.attempts_deleted, 'attempt row')}"
        ),
    )
