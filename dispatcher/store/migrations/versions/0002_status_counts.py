"""Counts of final deliveries, kept as they change (``dispatcher info`` without reading the
log), filled once from the deliveries already in the log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HISTORY_SHARD = -1
"""The shard that holds the rows counted here (dispatcher.store.counts.HISTORY_SHARD)."""


def upgrade() -> None:
    op.create_table(
        "webhook_status_counts",
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("shard", sa.Integer(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO webhook_status_counts (status, shard, count) "
        f"SELECT status, {HISTORY_SHARD}, count(*) FROM webhook_deliveries "
        "WHERE status IN ('delivered', 'failed') GROUP BY status"
    )


def downgrade() -> None:
    op.drop_table("webhook_status_counts")
