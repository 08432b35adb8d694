"""``dispatcher storage encrypt|rotate``: seal the log's PHI with the storage keys."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .doors import Asked, preview_line, run_door
from .output import plural

if TYPE_CHECKING:
    from ..ops.storage import Storage

SHOWN = 50
"""Unreadable values listed on stderr (the rest are counted)."""


@click.group("storage")
def storage() -> None:
    """Encryption at rest of payloads and response bodies (the config's ``storage_keys``)."""


def _run(door: Storage, dry_run: bool, as_json: bool) -> None:
    from ..runtime import get_runtime

    rt = get_runtime()
    try:
        plan = door.plan(rt)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    report = run_door(
        rt,
        door,
        plan,
        Asked(dry_run=dry_run, as_json=as_json),
        bar=f"storage {door.mode}",
        previewed=lambda _: preview_line(plan, dry_run),
        done=lambda report: (
            f"sealed {plural(sum(report.sealed.values()), 'value')} under storage key {report.key_id}"
        ),
    )
    for line in report.unreadable[:SHOWN]:
        click.echo(f"unreadable: {line}", err=True)
    if len(report.unreadable) > SHOWN:
        click.echo(f"… and {len(report.unreadable) - SHOWN:,} more unreadable", err=True)
    if report.unreadable:
        sys.exit(1)


@storage.command("encrypt")
@click.option("--dry-run", is_flag=True, help="Count what is still plain text; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def encrypt(dry_run: bool, as_json: bool) -> None:
    """Seal every value written before storage keys were set, under the first key. Resumable,
    and safe while workers run."""
    from ..ops.storage import Encrypt

    _run(Encrypt(), dry_run, as_json)


@storage.command("rotate")
@click.option("--dry-run", is_flag=True, help="Count what is under other keys; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def rotate(dry_run: bool, as_json: bool) -> None:
    """Re-seal every value sealed under a key other than the first. Once it reports nothing left,
    the older keys can leave storage_keys."""
    from ..ops.storage import Rotate

    _run(Rotate(), dry_run, as_json)
