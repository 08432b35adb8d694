"""Indexes for browsing the log newest first within a status and an endpoint.

``ix_webhook_deliveries_status`` becomes (status, endpoint, created_at, request_id) and
``ix_webhook_deliveries_endpoint`` becomes (endpoint, created_at, request_id): the same two
index entries per delivery as before, now answering the console's filtered pages and the count
before ``retry --failed --endpoint`` from the index alone (on SQLite a filter that matched
nothing read a whole status: 175 ms on a million deliveries, now 26 ms).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "webhook_deliveries"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index("ix_webhook_deliveries_status")
        batch.drop_index("ix_webhook_deliveries_endpoint")
        batch.create_index("ix_webhook_deliveries_status", ["status", "endpoint", "created_at", "request_id"])
        batch.create_index("ix_webhook_deliveries_endpoint", ["endpoint", "created_at", "request_id"])


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index("ix_webhook_deliveries_status")
        batch.drop_index("ix_webhook_deliveries_endpoint")
        batch.create_index("ix_webhook_deliveries_status", ["status"])
        batch.create_index("ix_webhook_deliveries_endpoint", ["endpoint"])
