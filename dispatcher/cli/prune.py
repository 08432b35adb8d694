"""``dispatcher prune``: delete old final deliveries and their attempt rows."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from ..vocabulary import FINAL_STATUSES
from .output import confirm, deliveries, plural, progress, say, to_json
from .params import MOMENT

if TYPE_CHECKING:
    from ..ops.door import Door, Outcome, Plan
    from ..runtime import Runtime


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
    from ..ops.door import Actor
    from ..ops.prune import Prune
    from ..runtime import get_runtime

    door = Prune([status] if status else FINAL_STATUSES, older_than)
    rt = get_runtime()
    plan = door.plan(rt)
    if dry_run or not plan.count:
        suffix = "; dry run, nothing was deleted" if plan.count else ""
        show(door.preview(rt, Actor.cli(), plan, dry_run=dry_run), as_json, plan.description + suffix)
        return
    report = carry_out(
        door, rt, plan, "pruning", as_json, None if yes else "Delete them and their attempt rows?"
    )
    show(
        report,
        as_json,
        f"deleted {deliveries(report.deleted)} and {plural(report.attempts_deleted, 'attempt row')}",
    )


# What the doors' commands share (cli/output.py is their place once it is free to change).


class Report(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


R = TypeVar("R", bound="Outcome")


def show(report: Report, as_json: bool, text: str) -> None:
    """A report: its ``--json`` document, or ``text``."""
    click.echo(to_json(report.as_dict()) if as_json else text)


def carry_out(
    door: Door[R], runtime: Runtime, plan: Plan, bar: str, as_json: bool, question: str | None = None
) -> R:
    """Says the plan, asks ``question`` (None: does not ask), and carries the plan out with a
    progress bar, audited as the OS user."""
    from ..ops.door import Actor

    say(plan.description, as_json)
    if question is not None:
        confirm(question)
    with progress(bar, plan.count or 0) as advance:
        return door.carry_out(runtime, Actor.cli(), plan, advance)
