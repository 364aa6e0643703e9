"""Every query of the connection domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update

from app.db.models import Connection, OnOfficeAccess, Tenant
from app.db.repository import SessionRepository, dialect_insert


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


class OnOfficeAccessRepository(SessionRepository):
    """The connections whose access onOffice refuses (app/connections/access.py)."""

    async def get(self, connection_id: int) -> OnOfficeAccess | None:
        return await self.session.get(OnOfficeAccess, connection_id, populate_existing=True)

    async def record_refused(
        self, connection_id: int, errorcode: int | None, reason: str, now: datetime
    ) -> bool:
        """Record (or confirm) a refusal; True when the connection was not refused before."""
        stmt = (
            dialect_insert(self.session)(OnOfficeAccess)
            .values(
                connection_id=connection_id,
                refused_at=now,
                errorcode=errorcode,
                reason=reason,
                checked_at=now,
            )
            .on_conflict_do_nothing(index_elements=["connection_id"])
        )
        created = bool(getattr(await self.session.execute(stmt), "rowcount", 0))
        if not created:
            await self.session.execute(
                update(OnOfficeAccess)
                .where(OnOfficeAccess.connection_id == connection_id)
                .values(errorcode=errorcode, reason=reason, checked_at=now)
                .execution_options(synchronize_session=False)
            )
        return created

    async def clear(self, connection_ids: Sequence[int]) -> int:
        """onOffice accepts the access again: the connections' jobs run again."""
        if not connection_ids:
            return 0
        result = await self.session.execute(
            delete(OnOfficeAccess)
            .where(OnOfficeAccess.connection_id.in_(list(connection_ids)))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def of_tenant(self, tenant_id: int) -> list[int]:
        stmt = (
            select(OnOfficeAccess.connection_id)
            .join(Connection, Connection.id == OnOfficeAccess.connection_id)
            .where(Connection.tenant_id == tenant_id)
        )
        return [int(i) for i in (await self.session.execute(stmt)).scalars()]

    async def recheck_soon(self, ids: Sequence[int]) -> None:
        """Check these refused connections again at the next poll (a user asked, a user opened
        the connector with a fresh claim)."""
        if ids:
            await self.session.execute(
                update(OnOfficeAccess)
                .where(OnOfficeAccess.connection_id.in_(list(ids)))
                .values(checked_at=None)
                .execution_options(synchronize_session=False)
            )

    async def refused(self) -> dict[int, datetime | None]:
        """Every refused connection with its last check."""
        stmt = select(OnOfficeAccess.connection_id, OnOfficeAccess.checked_at)
        return {int(row[0]): row[1] for row in (await self.session.execute(stmt)).all()}
