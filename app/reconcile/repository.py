"""Every query of the reconciliation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from app.db.models import Connection, OnOfficeAccess, ProviderReconcile, Tenant
from app.db.repository import SessionRepository


class ReconcileRepository(SessionRepository):
    async def get(self, connection_id: int) -> ProviderReconcile | None:
        return await self.session.get(ProviderReconcile, connection_id)

    async def connections(self) -> Sequence[tuple[int, ProviderReconcile | None]]:
        """Every set-up connection of an active tenant, with its reconciliation state; not
        those whose access onOffice refuses (what changed is read once it works again)."""
        stmt = (
            select(Connection.id, ProviderReconcile)
            .join(Tenant, Tenant.id == Connection.tenant_id)
            .outerjoin(ProviderReconcile, ProviderReconcile.connection_id == Connection.id)
            .outerjoin(OnOfficeAccess, OnOfficeAccess.connection_id == Connection.id)
            .where(
                Connection.list_id.is_not(None),
                Tenant.active.is_(True),
                OnOfficeAccess.connection_id.is_(None),
            )
            .order_by(Connection.id)
        )
        return [(int(row[0]), row[1]) for row in (await self.session.execute(stmt)).all()]

    async def save(self, connection_id: int, **values: Any) -> None:
        """Create or update the connection's state (one reconciliation at a time per
        connection: the caller holds its lock)."""
        found = await self.get(connection_id)
        if found is None:
            self.session.add(ProviderReconcile(connection_id=connection_id, **values))
        else:
            for name, value in values.items():
                setattr(found, name, value)
        await self.session.flush()
