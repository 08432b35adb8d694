"""Endpoints in the database, pausing, and alerts.

- ``webhook_endpoints``: each endpoint as the file writes it (sealed JSON) and the signing
  secrets it is retiring; ``webhook_endpoint_catalog``: one row once the file's endpoints were
  imported, with a generation every change raises. Created empty: the endpoints are imported
  from the file on the first start after the upgrade (or with ``dispatcher endpoints import``).
- ``webhook_endpoint_state`` gains ``paused`` (false for every endpoint) and ``paused_at``.
- ``webhook_alerts`` and ``webhook_alert_sends``: alert occurrences and their sending.

A downgrade drops the tables and the columns (a pause is lost; the endpoints live in the file
again).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _time() -> sa.DateTime:
    """The application's UTCDateTime, as the database holds it."""
    return sa.DateTime(timezone=True)


def _sealed() -> sa.String:
    """The application's SealedText (sealing happens in the application), as the database holds it."""
    return sa.String()


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("definition", _sealed(), nullable=False),
        sa.Column("retiring", _sealed()),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
    )
    op.create_table(
        "webhook_endpoint_catalog",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", _time(), nullable=False),
        sa.Column("changed_at", _time(), nullable=False),
    )
    with op.batch_alter_table("webhook_endpoint_state") as batch:
        batch.add_column(sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("paused_at", _time(), nullable=True))
    op.create_table(
        "webhook_alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("occurrence", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(128)),
        sa.Column("occurred_at", _time(), nullable=False),
        sa.Column("count", sa.Integer()),
        sa.Column("request_ids", sa.Text()),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("resolved_at", _time(), nullable=True),
        sa.Column("cursor", sa.BigInteger()),
    )
    op.create_index("ix_webhook_alerts_occurred_at", "webhook_alerts", ["occurred_at"])
    op.create_table(
        "webhook_alert_sends",
        sa.Column("alert_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("channel", sa.String(128), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _time(), nullable=False),
        sa.Column("answer", sa.Text()),
        sa.Column("sent_at", _time(), nullable=True),
    )
    op.create_index("ix_webhook_alert_sends_next_at", "webhook_alert_sends", ["next_at"])


def downgrade() -> None:
    op.drop_table("webhook_alert_sends")
    op.drop_table("webhook_alerts")
    with op.batch_alter_table("webhook_endpoint_state") as batch:
        batch.drop_column("paused_at")
        batch.drop_column("paused")
    op.drop_table("webhook_endpoint_catalog")
    op.drop_table("webhook_endpoints")
