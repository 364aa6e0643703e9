"""connection.webhook_*: the periodic webhook health check (state, last check, last repair and
what it found, why it is broken), and an index for the last provider event of a connection

Revision ID: 0015_webhook_health
Revises: 0008
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_webhook_health"
down_revision: str | None = "0014_provider_reconcile"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("webhook_health", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("webhook_checked_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("webhook_repaired_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("webhook_problems", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("webhook_error", sa.Text(), nullable=True))
    op.create_index(
        "ix_inbound_event_connection_received",
        "inbound_event",
        ["connection_id", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_event_connection_received", table_name="inbound_event")
    with op.batch_alter_table("connection") as batch:
        batch.drop_column("webhook_error")
        batch.drop_column("webhook_problems")
        batch.drop_column("webhook_repaired_at")
        batch.drop_column("webhook_checked_at")
        batch.drop_column("webhook_health")
