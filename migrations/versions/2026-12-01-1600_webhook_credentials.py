"""connection.webhook_credentials_encrypted: keep the webhook address across saves

Revision ID: 0006_webhook_credentials
Revises: 0005_tag_adds
Create Date: 2026-12-01 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_webhook_credentials"
down_revision: str | None = "0005_tag_adds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("webhook_credentials_encrypted", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.drop_column("webhook_credentials_encrypted")
