"""parked_contact: each list's ledger kept across switches of provider, account or list and
across a disconnect (a customer's and group's ledger rows for a list its connection left,
restored when a connection of the same customer and group returns to that list)

Revision ID: 0016_planner_parked_ledger
Revises: 0016_preview_dry_run
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_planner_parked_ledger"
down_revision: str | None = "0016_preview_dry_run"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "parked_contact",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("ledger_key", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
            name=op.f("fk_parked_contact_tenant_id_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_contact")),
        sa.UniqueConstraint(
            "tenant_id",
            "group_id",
            "ledger_key",
            "email",
            name=op.f("uq_parked_contact_tenant_id_group_id_ledger_key_email"),
        ),
    )


def downgrade() -> None:
    op.drop_table("parked_contact")
