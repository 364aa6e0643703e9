"""consent ledger: consent signals per contact, provider list state, run outcomes

Revision ID: 0004_consent
Revises: 0002_security
Create Date: 2026-12-01 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_consent"
down_revision: str | None = "0002_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
RUN_COUNTERS = ("opted_out", "pending_optin", "bounced", "provider_offset", "held_unsubscribes")


def upgrade() -> None:
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("onoffice_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("onoffice_changed_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("provider_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("provider_changed_at", sa.DateTime(timezone=True)))
    with op.batch_alter_table("connection") as batch:
        batch.add_column(sa.Column("ledger_key", sa.String(255), nullable=True))
    with op.batch_alter_table("sync_run") as batch:
        for name in RUN_COUNTERS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("provider_read_done", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("provider_subscribed", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("drift", sa.Integer(), nullable=True))
    op.create_table(
        "provider_member",
        sa.Column("id", BigId, nullable=False),
        sa.Column("connection_id", BigId, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("provider_id", sa.String(128), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connection.id"],
            name=op.f("fk_provider_member_connection_id_connection"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_member")),
        sa.UniqueConstraint(
            "connection_id", "email", name=op.f("uq_provider_member_connection_id_email")
        ),
    )


def downgrade() -> None:
    op.drop_table("provider_member")
    with op.batch_alter_table("sync_run") as batch:
        for name in (*RUN_COUNTERS, "provider_read_done", "provider_subscribed", "drift"):
            batch.drop_column(name)
    with op.batch_alter_table("connection") as batch:
        batch.drop_column("ledger_key")
    with op.batch_alter_table("contact") as batch:
        for name in ("onoffice_status", "onoffice_changed_at", "provider_status"):
            batch.drop_column(name)
        batch.drop_column("provider_changed_at")
