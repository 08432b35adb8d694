"""``dispatcher db upgrade|downgrade|current|check``: the log database's schema revision."""

from __future__ import annotations

import sys
from typing import Any

import click

from .output import confirm, deliveries, progress, say, to_json


@click.group("db")
def db() -> None:
    """The log database's schema: upgrade it, see where it stands, check it before a deploy."""


def _engine() -> Any:
    """An engine that opens the database whatever its revision (the other commands refuse one
    that is not at this version's)."""
    from ..runtime import get_runtime
    from ..store import create_store_engine

    runtime = get_runtime()
    return create_store_engine(runtime.settings.database_url, runtime.keyring, check_schema=False)


@db.command("upgrade")
@click.option("--to", "target", default="head", show_default=True, help="Stop at this revision.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def upgrade(target: str, as_json: bool) -> None:
    """Apply every migration up to head (or --to), stamping a database made before migrations
    as its baseline first; then index the deliveries written before patient keys existed.
    Safe to run again."""
    from ..ops import database
    from ..runtime import get_runtime

    engine = _engine()
    try:
        say(f"log database: {database.status(engine)['description']}", as_json)
        try:
            report = database.upgrade(engine, target, on_step=lambda r: say(f"applied {r}", as_json))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        to_index = database.unindexed(engine, report)
        if to_index:
            with progress("indexing by patient", to_index) as advance:
                database.index(engine, get_runtime().keyring, report, advance)
    finally:
        engine.dispose()
    if as_json:
        click.echo(to_json(report.as_dict()))
        return
    start = f"{report.stamped} (made before migrations, stamped)" if report.stamped else report.before
    if not report.applied:
        click.echo(f"already at {report.after}; nothing to apply")
    else:
        click.echo(f"upgraded {start} -> {report.after}: applied {', '.join(report.applied)}")
    if report.indexed:
        click.echo(f"indexed {deliveries(report.indexed)} by patient and encounter key")
    if report.unindexed:
        click.echo(
            f"warning: {deliveries(len(report.unindexed))} could not be indexed (payload under a "
            "storage key that is not configured); run db upgrade again once it is",
            err=True,
        )


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def downgrade(revision: str, yes: bool, as_json: bool) -> None:
    """Undo the migrations above REVISION (``base`` drops every table), to run an older version.

    Columns added since are dropped with what they hold (an erased payload becomes empty text)."""
    from ..store import versioning

    engine = _engine()
    try:
        if not yes:
            confirm(f"Downgrade the log database from {versioning.current(engine).describe()} to {revision}?")
        try:
            undone = versioning.downgrade(engine, revision, on_step=lambda r: say(f"now at {r}", as_json))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        after = versioning.current(engine)
    finally:
        engine.dispose()
    if as_json:
        click.echo(to_json({"undone": undone, "after": after.revision}))
    elif undone:
        click.echo(f"undid {', '.join(undone)}; now at {after.revision or 'base (no tables)'}")
    else:
        click.echo(f"already at {after.revision}; nothing to undo")


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document.")
def current(as_json: bool) -> None:
    """Print the database's revision and how it stands against this version."""
    from ..ops import database

    engine = _engine()
    try:
        status = database.status(engine)
    finally:
        engine.dispose()
    if as_json:
        click.echo(to_json(status))
    else:
        click.echo(f"{status['revision'] or '(none)'}: {status['description']}")


@db.command("check")
def check() -> None:
    """Exit 0 when the database is at this version's head, 1 with one line saying what to do."""
    from ..errors import SchemaMismatch
    from ..store import versioning

    engine = _engine()
    try:
        versioning.check(engine)
    except SchemaMismatch as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    click.echo(f"at head ({versioning.HEAD})")
