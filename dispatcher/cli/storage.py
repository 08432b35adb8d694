"""``dispatcher storage encrypt|rotate``: seal the log's PHI with the storage keys."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .output import plural

if TYPE_CHECKING:
    from ..ops.storage import Storage


@click.group("storage")
def storage() -> None:
    """Encryption at rest of payloads and response bodies (the config's ``storage_keys``)."""


def _run(door: Storage, dry_run: bool, as_json: bool) -> None:
    from ..ops.door import Actor
    from ..runtime import get_runtime
    from .prune import carry_out, show

    rt = get_runtime()
    try:
        plan = door.plan(rt)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if dry_run or not plan.count:
        said = "; dry run, nothing was changed" if dry_run else "; nothing to do"
        show(door.preview(rt, Actor.cli(), plan, dry_run=dry_run), as_json, plan.description + said)
        return
    report = carry_out(door, rt, plan, f"storage {door.mode}", as_json)
    show(
        report,
        as_json,
        f"sealed {plural(sum(report.sealed.values()), 'value')} under storage key {report.key_id}",
    )
    for line in report.unreadable[:50]:
        click.echo(f"unreadable: {line}", err=True)
    if len(report.unreadable) > 50:
        click.echo(f"… and {len(report.unreadable) - 50:,} more unreadable", err=True)
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
