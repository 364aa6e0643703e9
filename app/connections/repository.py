"""Every query of the connection domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from app.db.models import Connection, Tenant
from app.db.repository import SessionRepository


class ConnectionRepository(SessionRepository):
    async def get(self, connection_id: int) -> Connection | None:
        return await self.session.get(Connection, connection_id)

    async def for_tenant(self, tenant_id: int, group_id: str) -> Connection | None:
        stmt = select(Connection).where(
            Connection.tenant_id == tenant_id, Connection.group_id == group_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_webhook_token_hash(self, token_hash: str) -> Connection | None:
        stmt = select(Connection).where(Connection.webhook_token == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_tenant(self, tenant_id: int) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def add(self, connection: Connection) -> Connection:
        self.session.add(connection)
        await self.session.flush()
        return connection

    async def delete(self, connection: Connection) -> None:
        await self.session.delete(connection)
        await self.session.flush()

    async def all_for_tenant(self, tenant_id: int) -> Sequence[Connection]:
        """Every connection of a customer (one per onOffice group)."""
        stmt = select(Connection).where(Connection.tenant_id == tenant_id)
        return (await self.session.execute(stmt)).scalars().all()

    async def with_list(self) -> Sequence[Connection]:
        """Connections that are set up (have a provider list), of active tenants only."""
        stmt = (
            select(Connection)
            .join(Tenant, Tenant.id == Connection.tenant_id)
            .where(Connection.list_id.is_not(None), Tenant.active.is_(True))
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def due_for_webhook_check(self, checked_before: datetime) -> list[int]:
        """Set-up connections of active tenants whose webhook was not checked since
        `checked_before` (or never since it was saved)."""
        stmt = (
            select(Connection.id)
            .join(Tenant, Tenant.id == Connection.tenant_id)
            .where(
                Connection.list_id.is_not(None),
                Tenant.active.is_(True),
                or_(
                    Connection.webhook_checked_at.is_(None),
                    Connection.webhook_checked_at < checked_before,
                ),
            )
            .order_by(Connection.id)
        )
        return [int(i) for i in (await self.session.execute(stmt)).scalars()]

    async def record_webhook_health(
        self, connection_id: int, token_hash: str, values: Mapping[str, Any]
    ) -> bool:
        """Store a check's result, unless the connection was saved with another webhook
        address meanwhile (that save's webhook is the one to check next)."""
        result = await self.session.execute(
            update(Connection)
            .where(Connection.id == connection_id, Connection.webhook_token == token_hash)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def set_watermark(self, connection_id: int, value: datetime) -> None:
        await self.session.execute(
            update(Connection)
            .where(Connection.id == connection_id)
            .values(onoffice_watermark=value)
            .execution_options(synchronize_session=False)
        )

    async def lock(self, connection_id: int) -> None:
        """Serialise writers of one connection (SELECT … FOR UPDATE; SQLite serialises anyway)."""
        await self.session.execute(
            select(Connection.id).where(Connection.id == connection_id).with_for_update()
        )

    async def secret_rows(
        self, model: type[Tenant] | type[Connection], *, after_id: int, limit: int
    ) -> list[Tenant | Connection]:
        """A page of rows that hold encrypted secrets (key rotation)."""
        stmt = select(model).where(model.id > after_id).order_by(model.id).limit(limit)
        return list((await self.session.execute(stmt)).scalars())  # type: ignore[arg-type]

    async def with_tenant(self, connection_id: int) -> tuple[Connection | None, Tenant | None]:
        """A connection and its tenant (None for what does not exist)."""
        connection = await self.get(connection_id)
        tenant = await self.get_tenant(connection.tenant_id) if connection else None
        return connection, tenant
