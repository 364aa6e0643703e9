"""consent_history: every consent signal and every action of the connector per email

Revision ID: 0016_history_consent_history
Revises: 0016_security_onoffice_access
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_history_consent_history"
down_revision: str | None = "0016_security_onoffice_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consent_history",
        sa.Column("id", BigId, nullable=False),
        sa.Column("connection_id", BigId, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(32), nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("source_ref", sa.String(64), nullable=True),
        sa.Column("note", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_consent_history_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_history")),
    )
    op.create_index(
        "ix_consent_history_connection_email",
        "consent_history",
        ["connection_id", "email", "id"],
    )
    op.create_index("ix_consent_history_recorded_at", "consent_history", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_consent_history_recorded_at", table_name="consent_history")
    op.drop_index("ix_consent_history_connection_email", table_name="consent_history")
    op.drop_table("consent_history")
