"""inbound_event: onOffice "address saved" events are stored per connection since the inbox
(issue 23, item 1) drains them per connection. Events of the old shape (no connection) still
pending or failed when this runs are copied to every connection of their customer, so none is
lost at the upgrade (a `retry:` or a person's `person:` write-back included); the original is
stamped applied. A customer with no connection has nothing to push: stamped applied as the
inbox does today.

Revision ID: 0017_inbox_onoffice_events
Revises: 0016_planner_parked_ledger
Create Date: 2026-12-07 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0017_inbox_onoffice_events"
down_revision: str | None = "0016_planner_parked_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_events = sa.table(
    "inbound_event",
    sa.column("id", sa.BigInteger),
    sa.column("source", sa.String),
    sa.column("connection_id", sa.BigInteger),
    sa.column("tenant_id", sa.BigInteger),
    sa.column("dedupe_key", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("status", sa.String),
    sa.column("attempts", sa.Integer),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("applied_at", sa.DateTime(timezone=True)),
)
_connections = sa.table("connection", sa.column("id", sa.BigInteger), sa.column("tenant_id", sa.BigInteger))


def upgrade() -> None:
    bind = op.get_bind()
    left = bind.execute(
        sa.select(_events).where(
            _events.c.source == "onoffice",
            _events.c.connection_id.is_(None),
            _events.c.status.in_(("pending", "failed")),
        )
    ).mappings().all()
    now = datetime.now(UTC)
    for event in left:
        payload = dict(event["payload"] or {})
        tenant_id = event["tenant_id"] or payload.get("tenant_id")
        connections = (
            bind.execute(
                sa.select(_connections.c.id).where(_connections.c.tenant_id == tenant_id)
            ).scalars().all()
            if tenant_id is not None
            else []
        )
        for connection_id in connections:
            key = f"c{connection_id}:{event['dedupe_key']}"[:255]
            exists = bind.execute(
                sa.select(_events.c.id).where(
                    _events.c.source == "onoffice", _events.c.dedupe_key == key
                )
            ).first()
            if exists is None:
                bind.execute(
                    _events.insert().values(
                        source="onoffice",
                        connection_id=connection_id,
                        tenant_id=event["tenant_id"],
                        dedupe_key=key,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        received_at=event["received_at"],
                    )
                )
        bind.execute(
            _events.update()
            .where(_events.c.id == event["id"])
            .values(status="applied", applied_at=now)
        )


def downgrade() -> None:
    # The copies are events of the new shape; the old code ignores their connection and
    # drains them like any onOffice event. Nothing to undo.
    pass
