"""Baseline: the deliveries, the attempt log and endpoint state, as every version before
migrations created them (``create_all``).

A database those versions made has these tables and no version table; ``dispatcher db upgrade``
recognises it and stamps it at this revision (or at 0002 when it has the counts table too)
before carrying on, so no row is touched.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("attempt_limit", sa.Integer(), nullable=False),
        sa.Column("last_http_status", sa.Integer()),
        sa.Column("payload", sa.String(), nullable=False),
        sa.Column("reason", sa.String()),
        sa.Column("worker", sa.String(255)),
        sa.Column("replay_of", sa.String(36)),
        _time("attempt_started_at", nullable=True),
        _time("next_attempt_at", nullable=True),
        _time("created_at"),
        _time("updated_at"),
    )
    for column in ("event", "endpoint", "status", "created_at", "updated_at"):
        op.create_index(f"ix_webhook_deliveries_{column}", "webhook_deliveries", [column])
    op.create_table(
        "webhook_event_transaction_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer()),
        sa.Column("error", sa.String()),
        sa.Column("response_body", sa.String()),
        sa.Column("duration_ms", sa.Integer()),
        _time("next_attempt_at", nullable=True),
        sa.Column("request_payload", sa.String()),
        sa.Column("request_headers", sa.String()),
        _time("created_at"),
    )
    for column in ("request_id", "created_at"):
        op.create_index(
            f"ix_webhook_event_transaction_log_{column}", "webhook_event_transaction_log", [column]
        )
    op.create_table(
        "webhook_endpoint_state",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String()),
        _time("disabled_at", nullable=True),
        _time("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("webhook_endpoint_state")
    op.drop_table("webhook_event_transaction_log")
    op.drop_table("webhook_deliveries")
