"""contact.other_address_ids: duplicates of an email the incremental sync has seen

Revision ID: 0007_contact_other_addresses
Revises: 0006_webhook_credentials
Create Date: 2026-12-01 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_contact_other_addresses"
down_revision: str | None = "0006_webhook_credentials"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("other_address_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("other_address_ids")
