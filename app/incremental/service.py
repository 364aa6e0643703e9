"""What the API offers of the incremental sync."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.repository import OnOfficeAccessRepository
from app.connections.service import connection as connection_service
from app.incremental.jobs import enqueue_poll
from app.tenants.auth import TenantContext


async def request_poll(session: AsyncSession, tenant: TenantContext) -> None:
    """Queue a check of onOffice for changed addresses now (404 when not connected)."""
    connection = await connection_service.get(session, tenant)
    # A connection onOffice refuses is checked again at once (app/connections/access.py).
    await OnOfficeAccessRepository.from_session(session).recheck_soon([connection.id])
    enqueue_poll(connection.id, now=True)
