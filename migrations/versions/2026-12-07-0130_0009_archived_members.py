"""Archived members and bounces: sync_run.archived (members archived/deleted at the provider,
neither re-added nor written back) and contact.removal_dismissed_at (a user dismissed the
member's removal in a held Archive-All burst)

Revision ID: 0009_archived_members
Revises: 0011
Create Date: 2026-12-07 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_archived_members"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_run") as batch:
        batch.add_column(sa.Column("archived", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("removal_dismissed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("removal_dismissed_at")
    with op.batch_alter_table("sync_run") as batch:
        batch.drop_column("archived")
