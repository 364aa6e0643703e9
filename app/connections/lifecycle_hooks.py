"""The connection service's calls into app/lifecycle/switch.py, imported on first use: that
module reaches the webhook appliers, which look connections up through the service."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from app.db.models import Connection
    from app.resources import Resources


async def refuse_while_running(session: AsyncSession, connection_id: int) -> None:
    from app.lifecycle import switch

    await switch.refuse_while_running(session, connection_id)


async def settle_before_change(resources: Resources, connection: Connection) -> int:
    from app.lifecycle import switch

    return await switch.settle_before_change(resources, connection)


async def tie_to_tenant(session: AsyncSession, connection: Connection) -> None:
    from app.lifecycle import switch

    await switch.tie_to_tenant(session, connection)


async def adopt_orphans(session: AsyncSession, connection: Connection) -> int:
    from app.lifecycle import switch

    return await switch.adopt_orphans(session, connection)


async def swap_ledger(session: AsyncSession, connection: Connection, ledger_key: str) -> None:
    from app.lifecycle import switch

    await switch.swap_ledger(session, connection, ledger_key)


async def park_on_disconnect(session: AsyncSession, connection: Connection) -> None:
    from app.lifecycle import switch

    await switch.park_on_disconnect(session, connection)


async def restore_on_connect(session: AsyncSession, connection: Connection) -> None:
    from app.lifecycle import switch

    await switch.restore_on_connect(session, connection)
