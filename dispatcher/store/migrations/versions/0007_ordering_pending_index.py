"""The pending deliveries of each ordering key in an index of their own.

The claim of an ordered delivery asks whether an earlier delivery of its key is still pending,
and the heads of a key are its lowest pending deliveries. Through ``ix_webhook_deliveries_ordering``
(every delivery of a key, final or not) that walked the key's whole history: 6 ms per claim on
PostgreSQL for a key with 10,000 deliveries (10 ms on SQLite), growing with it.
``ix_webhook_deliveries_ordering_pending`` holds only the pending ones (a few per key), so both
are a seek: 0.08 ms on the same data. ``ix_webhook_deliveries_ordering`` keeps the key's last
number and loses its endpoint column: with the same columns SQLite's planner (which has no
statistics until ANALYZE) tied the two and sometimes walked the history anyway.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PENDING = sa.text("ordering_key IS NOT NULL AND status IN ('queued', 'in_flight', 'retrying')")


ORDERED = sa.text("ordering_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_ordering")
        batch.create_index(
            "ix_webhook_deliveries_ordering",
            ["ordering_key", "ordering_seq"],
            postgresql_where=ORDERED,
            sqlite_where=ORDERED,
        )
        batch.create_index(
            "ix_webhook_deliveries_ordering_pending",
            ["endpoint", "ordering_key", "ordering_seq"],
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_ordering_pending")
        batch.drop_index("ix_webhook_deliveries_ordering")
        batch.create_index(
            "ix_webhook_deliveries_ordering",
            ["endpoint", "ordering_key", "ordering_seq"],
            postgresql_where=ORDERED,
            sqlite_where=ORDERED,
        )
