"""Every query of the consent history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from app.db.models import ConsentHistory
from app.db.repository import SessionRepository


class HistoryRepository(SessionRepository):
    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        await self.session.execute(insert(ConsentHistory), list(rows))

    async def of_email(
        self, connection_id: int, email: str, *, after: int = 0, limit: int = 1000
    ) -> list[ConsentHistory]:
        """The person's entries, oldest first (cursor `after`: an entry id)."""
        stmt = (
            select(ConsentHistory)
            .where(
                ConsentHistory.connection_id == connection_id,
                ConsentHistory.email == email,
                ConsentHistory.id > after,
            )
            .order_by(ConsentHistory.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def purge_before(self, before: datetime, limit: int) -> int:
        """Entries recorded before `before` (at most `limit`)."""
        ids = (
            select(ConsentHistory.id)
            .where(ConsentHistory.recorded_at < before)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self.session.execute(
            delete(ConsentHistory)
            .where(ConsentHistory.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
