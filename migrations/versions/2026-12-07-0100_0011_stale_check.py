"""contact.stale_run_id and contact.pushed_at: the full sync unsubscribes a contact as "left
onOffice" only after a re-read by id confirmed it (stale_run_id = that run), and never one the
incremental push wrote since the run started (pushed_at)

Revision ID: 0011
Revises: 0012_tenant_revocation
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0012_tenant_revocation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("stale_run_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.drop_column("pushed_at")
        batch.drop_column("stale_run_id")
