"""sync_tag_add: tags synced members still lack, flushed per tag in segments of 500

Revision ID: 0005_tag_adds
Revises: 0003_ux
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_tag_adds"
down_revision: str | None = "0003_ux"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sync_tag_add",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_run.id"],
            name=op.f("fk_sync_tag_add_run_id_sync_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_tag_add")),
    )
    op.create_index("ix_sync_tag_add_run_tag", "sync_tag_add", ["run_id", "tag"])


def downgrade() -> None:
    op.drop_index("ix_sync_tag_add_run_tag", table_name="sync_tag_add")
    op.drop_table("sync_tag_add")
