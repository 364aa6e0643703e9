"""The sync preview (sync_preview, preview_item) and sync_run.out_of_scope (issue 20: honest
numbers, dry-run preview)

Revision ID: 0016_preview_dry_run
Revises: 0016_history_consent_history
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_preview_dry_run"
down_revision: str | None = "0016_history_consent_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(
            sa.Column("out_of_scope", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "sync_preview",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "connection_id",
            BigId,
            sa.ForeignKey("connection.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_sync_preview_connection", "sync_preview", ["connection_id", "id"])
    op.create_table(
        "preview_item",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "preview_id",
            BigId,
            sa.ForeignKey("sync_preview.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=False),
        sa.Column("reason_params", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("onoffice_write", sa.String(16), nullable=True),
    )
    op.create_index(
        "ix_preview_item_preview_outcome", "preview_item", ["preview_id", "outcome", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_preview_item_preview_outcome", table_name="preview_item")
    op.drop_table("preview_item")
    op.drop_index("ix_sync_preview_connection", table_name="sync_preview")
    op.drop_table("sync_preview")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("out_of_scope")
