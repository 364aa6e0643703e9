"""tenant.sessions_valid_after and tenant.deactivated_at/_reason: access can be revoked

Revision ID: 0012_tenant_revocation
Revises: 0010
Create Date: 2026-12-07 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_tenant_revocation"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenant") as batch:
        batch.add_column(sa.Column("sessions_valid_after", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("deactivated_reason", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("tenant") as batch:
        batch.drop_column("deactivated_reason")
        batch.drop_column("deactivated_at")
        batch.drop_column("sessions_valid_after")
