"""onoffice_access: a connection whose access onOffice refuses (provider locked, subscription
cancelled, API user gone); its onOffice jobs stop until the access works again

Revision ID: 0016_security_onoffice_access
Revises: 0013_groups
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_security_onoffice_access"
down_revision: str | None = "0013_groups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "onoffice_access",
        sa.Column("connection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("errorcode", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name="fk_onoffice_access_connection_id_connection",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", name="pk_onoffice_access"),
    )


def downgrade() -> None:
    op.drop_table("onoffice_access")
