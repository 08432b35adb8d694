"""``dispatcher storage encrypt|rotate``: seal the log's PHI with the storage keys."""

from __future__ import annotations

import sys

import click

from .output import plural, progress, say, to_json


@click.group("storage")
def storage() -> None:
    """Encryption at rest of payloads and response bodies (the config's ``storage_keys``)."""


def _run(mode: str, dry_run: bool, as_json: bool) -> None:
    from ..ops import audit
    from ..ops import storage as sealing
    from ..runtime import get_runtime

    rt = get_runtime()
    try:
        planned = sealing.plan(rt.engine, rt.keyring, mode)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    total = sum(planned.to_do.values())
    what = (
        f"{plural(total, 'value')} to {'seal' if mode == 'encrypt' else 're-seal'} under storage key "
        f"{planned.key_id} ({', '.join(f'{column}: {n:,}' for column, n in planned.to_do.items())})"
    )
    if dry_run or not total:
        planned.dry_run = dry_run
        if as_json:
            click.echo(to_json(planned.as_dict()))
        else:
            click.echo(what + ("; dry run, nothing was changed" if dry_run else "; nothing to do"))
        return
    say(what, as_json)
    with progress(f"storage {mode}", total) as advance:
        report = sealing.run(rt.engine, rt.keyring, mode, advance)
    audit.record(rt.engine, f"storage {mode}", {"key_id": report.key_id}, report.counts())
    if as_json:
        click.echo(to_json(report.as_dict()))
    else:
        click.echo(f"sealed {plural(sum(report.sealed.values()), 'value')} under storage key {report.key_id}")
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
    _run("encrypt", dry_run, as_json)


@storage.command("rotate")
@click.option("--dry-run", is_flag=True, help="Count what is under other keys; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def rotate(dry_run: bool, as_json: bool) -> None:
    """Re-seal every value sealed under a key other than the first. Once it reports nothing left,
    the older keys can leave storage_keys."""
    _run("rotate", dry_run, as_json)
