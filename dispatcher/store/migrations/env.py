"""Alembic's environment: runs on the connection :mod:`dispatcher.store.versioning` hands it.

There is no ``alembic.ini`` and no URL here: the caller opens the connection (with the
dispatcher's own engine settings) and passes it as ``config.attributes["connection"]``. SQLite
alters tables in batch mode (copy and move), which its ALTER TABLE needs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.migration import MigrationContext, MigrationInfo

from dispatcher.store.schema import METADATA

connection = context.config.attributes["connection"]
on_step = context.config.attributes.get("on_step")


def _applied(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Tells the caller each revision reached (the one now current)."""
    if on_step is not None:
        on_step(step.up_revision_id if step.is_upgrade else (step.down_revision_ids or ("base",))[0])


context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    transaction_per_migration=True,
    on_version_apply=_applied,
)
with context.begin_transaction():
    context.run_migrations()
