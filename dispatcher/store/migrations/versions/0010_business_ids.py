"""Search by business id: ``webhook_business_ids`` holds, for each delivery, the keyed hashes
(HMAC-SHA256 under ``search_key``) of the order number, prescription, encounter and patient ids
its event's data holds, never the ids themselves (:mod:`dispatcher.store.search`).

- One row per (request_id, digest); the index on the digest makes a search a seek.
- The deliveries stored before this revision are not indexed (nor those dispatched while no
  ``search_key`` is set): a search does not find them. A downgrade drops the table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_business_ids",
        sa.Column("request_id", sa.String(36), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
    )
    op.create_index("ix_webhook_business_ids_digest", "webhook_business_ids", ["digest", "request_id"])


def downgrade() -> None:
    op.drop_table("webhook_business_ids")
