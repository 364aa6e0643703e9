"""Every query of the connection domain."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, Tenant


class ConnectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> ConnectionRepository:
        return cls(session)

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
