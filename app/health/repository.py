"""The one query of the health domain."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def ping_database(engine: AsyncEngine) -> None:
    """Raise when the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
