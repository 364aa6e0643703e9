"""security: webhook tokens stored hashed, a separate Brevo bearer secret

Revision ID: 0002_security
Revises: 0001_initial
Create Date: 2026-12-01 10:30:00

`connection.webhook_token` now holds the SHA-256 (hex) of the URL token, and
`connection.webhook_secret_hash` the SHA-256 of the Brevo bearer secret. Existing Brevo
webhooks were registered with the URL token as their bearer, so that becomes their secret until
the connection is saved again (which registers a fresh token and secret).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002_security'
down_revision: str | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode('utf-8')).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('connection') as batch:
        batch.add_column(sa.Column('webhook_secret_hash', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    table = sa.table(
        'connection',
        sa.column('id', sa.Integer()),
        sa.column('provider', sa.String()),
        sa.column('webhook_token', sa.String()),
        sa.column('webhook_secret_hash', sa.String()),
    )
    rows = conn.execute(sa.select(table.c.id, table.c.provider, table.c.webhook_token)).all()
    for row_id, provider, token in rows:
        values = {'webhook_token': _sha256(token)}
        if provider == 'brevo':
            values['webhook_secret_hash'] = _sha256(token)
        conn.execute(table.update().where(table.c.id == row_id).values(**values))


def downgrade() -> None:
    # The plain tokens cannot be recovered: connections must be saved again after a downgrade.
    with op.batch_alter_table('connection') as batch:
        batch.drop_column('webhook_secret_hash')
