"""``dispatcher log erase``: erase the PHI of chosen deliveries (by request id, or a patient's)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .doors import Asked, preview_line, run_door
from .output import deliveries, plural

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
    from ..ops.erase import Erase
    from ..runtime import get_runtime

    door = Erase(request_ids, patient_id, encounter_id)
    rt = get_runtime()
    plan = door.plan(rt)
    report = run_door(
        rt,
        door,
        plan,
        Asked(dry_run, yes, as_json),
        bar="erasing",
        question=f"Erase the PHI of {deliveries(plan.count or 0)}? This cannot be undone.",
        previewed=lambda report: "\n".join(
            [
                preview_line(plan, dry_run, "erased", "nothing to erase"),
                *(f"{request_id}: would be erased" for request_id in report.to_erase.items[:SHOWN]),
            ]
        ),
        done=lambda report: (
            f"erased the PHI of {deliveries(report.erased)} ({plural(report.attempts_erased, 'attempt')})"
        ),
    )
    _left_alone(report)


def _left_alone(report: EraseReport) -> None:
    """What was left alone, and why (on stderr); exit 1 if any was missing or still to be sent."""
    for request_id in report.pending.items[:SHOWN]:
        click.echo(f"{request_id}: left alone, still to be sent (erase it once it is final)", err=True)
    for request_id in report.already_erased.items[:SHOWN]:
        click.echo(f"{request_id}: already erased", err=True)
    for request_id in report.not_found[:SHOWN]:
        click.echo(f"{request_id}: no such delivery", err=True)
    if report.not_found or report.pending.items:
        sys.exit(1)
