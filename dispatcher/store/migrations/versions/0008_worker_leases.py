"""Worker leases: one row per running worker, renewed with its heartbeat, so a worker's
liveness survives Redis losing its data (a flush, a restart without persistence) and reconcile
never takes a live worker's claims.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_worker_leases",
        sa.Column("worker", sa.String(255), primary_key=True),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_worker_leases_expires_at", "webhook_worker_leases", ["expires_at"])


def downgrade() -> None:
    op.drop_table("webhook_worker_leases")
