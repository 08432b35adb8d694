"""The HTTP API's tokens.

- ``webhook_api_tokens``: one row per token, by name, with the SHA-256 of the whole token (hex,
  unique), its scopes (comma-separated), when it was made and when it was last used. Created
  empty: ``dispatcher api tokens create`` makes the first.

A downgrade drops the table (every token is revoked with it).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _time() -> sa.DateTime:
    """The application's UTCDateTime, as the database holds it."""
    return sa.DateTime(timezone=True)


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_api_tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("last_used_at", _time(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("webhook_api_tokens")
