"""``dispatcher log erase``: erase the PHI of chosen deliveries (by request id, or a patient's)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .output import deliveries, plural, to_json

if TYPE_CHECKING:
    from ..ops.erase import EraseReport

SHOWN = 50


@click.command("erase")
@click.argument("request_ids", nargs=-1, metavar="[REQUEST_ID]...")
@click.option("--patient-id", help="Every delivery of this patient (found by keyed hash, no payload opened).")
@click.option("--encounter-id", help="With --patient-id: only this encounter's deliveries.")
@click.option("--dry-run", is_flag=True, help="List what would be erased; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def log_erase(
    request_ids: tuple[str, ...],
    patient_id: str | None,
    encounter_id: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Erase the payload, request payloads, response bodies and attempt errors (what the partner
    answered) of final deliveries, as retention does: the rows stay (status, times, attempts,
    HTTP statuses) with payload_erased_at set. Deliveries still to be sent are listed and left
    alone."""
    if bool(request_ids) == bool(patient_id):
        raise click.UsageError("give REQUEST_IDs or --patient-id, not both and not neither")
    if encounter_id is not None and not patient_id:
        raise click.UsageError("--encounter-id needs --patient-id")
    from ..ops.door import Actor
    from ..ops.erase import Erase
    from ..runtime import get_runtime
    from .prune import carry_out

    door = Erase(request_ids, patient_id, encounter_id)
    rt = get_runtime()
    plan = door.plan(rt)
    if dry_run or not plan.count:
        suffix = "; dry run, nothing was erased" if dry_run else "; nothing to erase"
        _report(door.preview(rt, Actor.cli(), plan), as_json, plan.description + suffix)
        return
    question = f"Erase the PHI of {deliveries(plan.count)}? This cannot be undone."
    report = carry_out(door, rt, plan, "erasing", as_json, None if yes else question)
    done = f"erased the PHI of {deliveries(report.erased)} ({plural(report.attempts_erased, 'attempt')})"
    _report(report, as_json, done)


def _report(report: EraseReport, as_json: bool, summary: str) -> None:
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(summary)
        for request_id in report.to_erase.items[:SHOWN] if report.dry_run else []:
            click.echo(f"{request_id}: would be erased")
    for request_id in report.pending.items[:SHOWN]:
        click.echo(f"{request_id}: left alone, still to be sent (erase it once it is final)", err=True)
    for request_id in report.already_erased.items[:SHOWN]:
        click.echo(f"{request_id}: already erased", err=True)
    for request_id in report.not_found[:SHOWN]:
        click.echo(f"{request_id}: no such delivery", err=True)
    if report.not_found or report.pending.items:
        sys.exit(1)
