"""Which revision of the schema a database is at, and bringing it to the newest.

A database is one of:

- **empty** (none of the dispatcher's tables): made at :data:`HEAD` on first use, as before
  migrations -- the tables from :mod:`.schema` and the version row, in one transaction that
  concurrent starters take in turn. Alembic is not even imported.
- **current** (at :data:`HEAD`): used as it is.
- **behind** (an older revision, or **legacy**: tables made by a version before migrations, with
  no version table): never changed behind the operator's back. Opening it raises
  :class:`~dispatcher.errors.SchemaOutdated` (``run: dispatcher db upgrade``); :func:`upgrade`
  recognises a legacy database as the baseline it is (0001, or 0002 with the counts table),
  stamps it, and runs the migrations from there.
- **unknown** (a revision this version does not have: a newer dispatcher upgraded it):
  :class:`~dispatcher.errors.SchemaUnknown`; the newer version can downgrade it.

Only :func:`upgrade`, :func:`downgrade` and :func:`current` import Alembic.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import SchemaOutdated, SchemaUnknown
from .schema import METADATA, TABLES

REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011", "0012")
"""Every revision, oldest first (a test keeps it equal to the scripts in migrations/versions)."""
HEAD = REVISIONS[-1]
SCRIPT_LOCATION = "dispatcher.store:migrations"
BASELINE_TABLES = ("webhook_deliveries", "webhook_event_transaction_log", "webhook_endpoint_state")
"""What the versions before migrations made (revision 0001); 0002 added the counts table."""

VERSION_TABLE = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's own table, as Alembic makes it, so a database made at head needs no Alembic."""

_CREATE_LOCK = 0x64697370  # "disp": the advisory lock PostgreSQL starters take in turn
UPGRADE_HINT = "run: dispatcher db upgrade"


@dataclass(frozen=True)
class State:
    """Where a database stands: ``revision`` (None when it has none) and what that means."""

    revision: str | None
    kind: str
    """``empty``, ``legacy``, ``behind``, ``current`` or ``unknown``."""

    def describe(self) -> str:
        if self.kind == "empty":
            return "empty (its tables are made at first use)"
        if self.kind == "legacy":
            return "made before migrations (no revision yet)"
        return f"at revision {self.revision} ({self.kind}; this version's newest is {HEAD})"


def state_of(conn: Connection) -> State:
    tables = set(sa.inspect(conn).get_table_names())
    revisions = []
    if VERSION_TABLE.name in tables:
        revisions = [r for (r,) in conn.execute(sa.select(VERSION_TABLE.c.version_num))]
    if len(revisions) > 1:
        return State(", ".join(revisions), "unknown")  # Alembic's branches: never ours
    if revisions:
        revision = revisions[0]
        if revision == HEAD:
            return State(revision, "current")
        return State(revision, "behind" if revision in REVISIONS else "unknown")
    # No revision: downgraded to base, never used, or made before migrations.
    return State(None, "legacy" if tables & {t.name for t in TABLES} else "empty")


def require_current(engine: Engine) -> None:
    """Makes an empty database at head, or checks that the database is at head.

    Raises:
        SchemaOutdated: the database is behind (or made before migrations).
        SchemaUnknown: the database is at a revision this version does not know.
    """
    with engine.connect() as conn:
        state = state_of(conn)
        conn.rollback()
    if state.kind == "empty":
        with _creating(engine) as conn:
            if state_of(conn).kind == "empty":  # another starter may have made it meanwhile
                METADATA.create_all(conn, tables=TABLES)
                VERSION_TABLE.create(conn, checkfirst=True)
                conn.execute(VERSION_TABLE.insert().values(version_num=HEAD))
        with engine.connect() as conn:
            state = state_of(conn)
    _refuse_unless_current(state)


def _refuse_unless_current(state: State) -> None:
    if state.kind in ("behind", "legacy"):
        raise SchemaOutdated(
            f"the log database is {state.describe()}; this version needs {HEAD}: {UPGRADE_HINT}"
        )
    if state.kind == "unknown":
        raise SchemaUnknown(
            f"the log database is at revision {state.revision}, which this "
            f"version does not know (its newest is {HEAD}): a newer dispatcher upgraded it; run that "
            f"version, or its 'dispatcher db downgrade {HEAD}'"
        )


@contextmanager
def _creating(engine: Engine) -> Iterator[Connection]:
    """A transaction one starter holds at a time: SQLite's BEGIN IMMEDIATE, a PostgreSQL
    advisory lock."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
        yield conn


def current(engine: Engine) -> State:
    with engine.connect() as conn:
        state = state_of(conn)
        conn.rollback()
    return state


def check(engine: Engine) -> None:
    """Raises unless the database is at head; an empty one counts as behind, not created."""
    state = current(engine)
    if state.kind == "empty":
        raise SchemaOutdated(f"the log database is empty; this version needs {HEAD}: {UPGRADE_HINT}")
    _refuse_unless_current(state)


def upgrade(
    engine: Engine,
    target: str = "heads",
    on_step: Callable[[str], None] | None = None,
    on_stamp: Callable[[str], None] | None = None,
) -> list[str]:
    """Runs every migration up to ``target``, stamping a legacy database as its baseline first
    (``on_stamp`` hears which); ``on_step`` hears each revision applied.

    Returns the revisions applied, oldest first.

    Raises:
        SchemaUnknown: the database is at a revision this version does not know.
        ValueError: ``target`` is not one of :data:`REVISIONS`.
    """
    _known(target, allow_head=True)
    from alembic import command

    before = current(engine)
    if before.kind == "unknown":
        _refuse_unless_current(before)
    with engine.connect() as conn:
        config = alembic_config(conn, None)
        if before.kind == "legacy":
            baseline = "0002" if sa.inspect(conn).has_table("webhook_status_counts") else "0001"
            command.stamp(config, baseline)
            conn.commit()
            before = State(baseline, "behind")
            if on_stamp is not None:
                on_stamp(baseline)
        config.attributes["on_step"] = on_step
        command.upgrade(config, "heads" if target in ("head", "heads") else target)
        conn.commit()
    after = current(engine)
    return _between(before, after)


def downgrade(engine: Engine, target: str, on_step: Callable[[str], None] | None = None) -> list[str]:
    """Runs the downgrades down to ``target`` (a revision, or ``base`` to drop every table).

    Returns the revisions undone, newest first.
    """
    if target != "base":
        _known(target)
    from alembic import command

    before = current(engine)
    _refuse_unless_known(before)
    with engine.connect() as conn:
        command.downgrade(alembic_config(conn, on_step), target)
        conn.commit()
    after = current(engine)
    return list(reversed(_between(after, before)))


def _refuse_unless_known(state: State) -> None:
    if state.kind == "unknown":
        _refuse_unless_current(state)
    if state.kind in ("empty", "legacy"):
        raise SchemaOutdated(f"the log database is {state.describe()}: there is nothing to downgrade")


def _between(low: State, high: State) -> list[str]:
    start = REVISIONS.index(low.revision) + 1 if low.revision in REVISIONS else 0
    end = REVISIONS.index(high.revision) + 1 if high.revision in REVISIONS else 0
    return list(REVISIONS[start:end])


def _known(target: str, allow_head: bool = False) -> None:
    if target in REVISIONS or (allow_head and target in ("head", "heads")):
        return
    raise ValueError(f"unknown revision {target!r}; expected one of: {', '.join(REVISIONS)}")


def alembic_config(conn: Connection, on_step: Callable[[str], None] | None) -> Any:
    """Alembic's configuration for these migrations, on ``conn`` (no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = conn
    config.attributes["on_step"] = on_step
    return config


def scripts_dir() -> str:
    """Where the migration scripts are, for tests and ``scripts/new-migration``."""
    return str(importlib.resources.files("dispatcher.store") / "migrations")
