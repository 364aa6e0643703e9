"""problem reason codes (translated at display time), the tenant's UI language

Revision ID: 0003_ux
Revises: 0004_consent
Create Date: 2026-12-01 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003_ux'
down_revision: str | None = '0004_consent'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('problem') as batch:
        batch.add_column(
            sa.Column('reason_code', sa.String(length=64), nullable=False, server_default='')
        )
        batch.add_column(sa.Column('reason_params', sa.JSON(), nullable=True))
    op.create_index('ix_problem_run_id_kind', 'problem', ['run_id', 'kind', 'id'])
    with op.batch_alter_table('tenant') as batch:
        batch.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    with op.batch_alter_table('sync_run') as batch:
        batch.add_column(sa.Column('addresses_total', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sync_run') as batch:
        batch.drop_column('addresses_total')
    with op.batch_alter_table('tenant') as batch:
        batch.drop_column('language')
    op.drop_index('ix_problem_run_id_kind', table_name='problem')
    with op.batch_alter_table('problem') as batch:
        batch.drop_column('reason_params')
        batch.drop_column('reason_code')
