"""The PHI lifecycle: a delivery's payload can be erased (retention, ``log erase``) while its row
stays, and a patient's deliveries are found by a keyed hash of ``patient_id`` and
``encounter_id`` instead of by reading every payload.

- ``webhook_deliveries.payload`` may be NULL (erased); ``payload_erased_at`` says when.
- ``patient_key`` and ``encounter_key``: HMAC-SHA256 of the ids (hex), indexed together (a patient,
  or one encounter of theirs; one index, so a dispatch writes one more index entry, not two);
  ``-`` for an event without a patient; NULL for a row not indexed yet (``dispatcher db upgrade`` indexes the rows
  written before this revision once it has run).
- ``ix_webhook_deliveries_unerased``: the final deliveries whose payload retention has still to
  erase, by age, without visiting the ones already erased.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNERASED = sa.text("payload_erased_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.alter_column("payload", existing_type=sa.String(), nullable=True)
        batch.add_column(sa.Column("payload_erased_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("patient_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("encounter_key", sa.String(64), nullable=True))
        batch.create_index("ix_webhook_deliveries_patient", ["patient_key", "encounter_key"])
        batch.create_index(
            "ix_webhook_deliveries_unerased",
            ["updated_at"],
            postgresql_where=UNERASED,
            sqlite_where=UNERASED,
        )


def downgrade() -> None:
    # An erased payload becomes the empty text it cannot be parsed from: the row stays.
    op.execute("UPDATE webhook_deliveries SET payload = '' WHERE payload IS NULL")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_index("ix_webhook_deliveries_unerased")
        batch.drop_index("ix_webhook_deliveries_patient")
        batch.drop_column("encounter_key")
        batch.drop_column("patient_key")
        batch.drop_column("payload_erased_at")
        batch.alter_column("payload", existing_type=sa.String(), nullable=False)
