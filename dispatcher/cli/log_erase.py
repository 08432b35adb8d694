"""``dispatcher log erase``: erase the PHI of chosen deliveries (by request id, or a patient's)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from .output import confirm, deliveries, plural, progress, say, to_json

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
    from ..ops import audit
    from ..ops import erase as erasing
    from ..runtime import get_runtime

    rt = get_runtime()
    if patient_id:
        found = erasing.by_patient(rt.engine, rt.keyring, patient_id, encounter_id)
        missing: list[str] = []
        selection: dict[str, Any] = {"patient_key": rt.keyring.index(patient_id)}
        if encounter_id is not None:
            selection["encounter_key"] = rt.keyring.index(encounter_id)
    else:
        found, missing = erasing.by_request_ids(rt.engine, request_ids)
        selection = {"request_ids": list(request_ids)[:1000]}
    planned = erasing.erase(rt.engine, found, dry_run=True, not_found=missing)
    todo = len(planned.to_erase.items)
    what = f"{deliveries(planned.matched)} found; {deliveries(todo)} to erase"
    if dry_run or not todo:
        audit.record(rt.engine, "log erase", {**selection, "dry_run": True}, planned.counts())
        _report(
            planned, as_json, what + ("; dry run, nothing was erased" if dry_run else "; nothing to erase")
        )
        return
    say(what, as_json)
    if not yes:
        confirm(f"Erase the PHI of {deliveries(todo)}? This cannot be undone.")
    with progress("erasing", todo) as advance:
        report = erasing.erase(rt.engine, found, not_found=missing, progress=advance)
    audit.record(rt.engine, "log erase", selection, report.counts())
    _report(
        report,
        as_json,
        f"erased the PHI of {deliveries(report.erased)} ({plural(report.attempts_erased, 'attempt')})",
    )


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
