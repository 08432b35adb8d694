"""What a partner answers is PHI: an attempt's ``error`` (the partner's reason phrase, an
exception quoting what it sent) is sealed with the storage keys like its ``response_body``, and
``failure`` says, for anyone to read, why an attempt got no answer.

- ``webhook_event_transaction_log.failure``: the failure kind (``timeout``, ``connection_error``,
  ``dns_error``, ``invalid_request``, ``destination_refused``) of an attempt that got no HTTP
  answer; NULL for one that got an answer, and for the rows written before this revision.
- ``webhook_event_transaction_log.error`` stays text: a sealed value is text. Rows written before
  are read as they are; ``dispatcher storage encrypt`` seals them.
- Erasing a delivery now empties its attempts' ``error`` too: the attempts of the deliveries
  erased before this revision have theirs emptied here (a downgrade leaves them empty, as it
  leaves an erased payload erased).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_event_transaction_log") as batch:
        batch.add_column(sa.Column("failure", sa.String(32), nullable=True))
    op.execute(
        "UPDATE webhook_event_transaction_log SET error = NULL WHERE error IS NOT NULL AND request_id IN"
        " (SELECT request_id FROM webhook_deliveries WHERE payload_erased_at IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_event_transaction_log") as batch:
        batch.drop_column("failure")
