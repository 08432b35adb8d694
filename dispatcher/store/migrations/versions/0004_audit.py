"""The audit trail: one row per operator action that changes or reveals the log (retry,
replay, prune, retention, erase, endpoints disable/enable, storage encrypt/rotate): when, who,
what, on which selection, with what counts. It holds no PHI (a patient is named by its key).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
    )
    op.create_index("ix_webhook_audit_at", "webhook_audit", ["at"])


def downgrade() -> None:
    op.drop_table("webhook_audit")
