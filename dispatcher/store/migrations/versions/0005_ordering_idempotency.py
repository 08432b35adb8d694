"""Per-key ordering and idempotent dispatch.

- ``webhook_deliveries.ordering_key`` (a keyed hash of the delivery's ordering key, for an
  endpoint with ``ordered: true``) and ``ordering_seq`` (its place in that key: dispatch order,
  a retried delivery at the back), indexed together with ``endpoint`` for the ordered rows only,
  so an unordered delivery writes no more than before.
- ``webhook_idempotency``: one row per idempotency key (a keyed hash of it) with what the first
  dispatch stored; its primary key is what makes two racing dispatches with one key produce one
  set of deliveries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ORDERED = sa.text("ordering_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("ordering_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ordering_seq", sa.BigInteger(), nullable=True))
        batch.create_index(
            "ix_webhook_deliveries_ordering",
            ["endpoint", "ordering_key", "ordering_seq"],
            postgresql_where=ORDERED,
            sqlite_where=ORDERED,
        )
    op.create_table(
        "webhook_idempotency",
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("request_ids", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_idempotency_created_at", "webhook_idempotency", ["created_at"])


def downgrade() -> None:
    op.drop_table("webhook_idempotency")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_ordering")
        batch.drop_column("ordering_seq")
        batch.drop_column("ordering_key")
