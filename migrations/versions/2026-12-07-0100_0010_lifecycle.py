"""The connection's lifecycle: events stay tied to the tenant; the held unsubscribes of a run

Revision ID: 0010
Revises: 0007_contact_other_addresses
Create Date: 2026-12-07 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0007_contact_other_addresses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("inbound_event") as batch:
        batch.add_column(sa.Column("tenant_id", BigId, nullable=True))
        batch.create_foreign_key(
            "fk_inbound_event_tenant_id_tenant", "tenant", ["tenant_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_inbound_event_tenant_id", ["tenant_id"])
    op.execute(
        "UPDATE inbound_event SET tenant_id = "
        "(SELECT connection.tenant_id FROM connection "
        "WHERE connection.id = inbound_event.connection_id) "
        "WHERE connection_id IS NOT NULL"
    )
    op.create_table(
        "held_unsubscribe",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "run_id", BigId, sa.ForeignKey("sync_run.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("address_id", sa.BigInteger(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.UniqueConstraint("run_id", "email"),
    )


def downgrade() -> None:
    op.drop_table("held_unsubscribe")
    with op.batch_alter_table("inbound_event") as batch:
        batch.drop_index("ix_inbound_event_tenant_id")
        batch.drop_constraint("fk_inbound_event_tenant_id_tenant", type_="foreignkey")
        batch.drop_column("tenant_id")
