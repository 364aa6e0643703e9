"""Every query on received events (`inbound_event`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import InboundEvent, InboundEventStatus


class InboundEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> InboundEventRepository:
        return cls(session)

    async def create_on_conflict_do_nothing(
        self,
        *,
        source: str,
        dedupe_key: str,
        payload: dict[str, Any],
        received_at: datetime,
        connection_id: int | None = None,
    ) -> int | None:
        """Store the event; its id, or None when (source, dedupe_key) was stored before."""
        bind = self.session.bind
        insert = (
            sqlite.insert
            if bind is not None and bind.dialect.name == "sqlite"
            else postgresql.insert
        )
        stmt = (
            insert(InboundEvent)
            .values(
                source=source,
                dedupe_key=dedupe_key[:255],
                payload=payload,
                connection_id=connection_id,
                status=InboundEventStatus.pending,
                received_at=received_at,
            )
            .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
            .returning(InboundEvent.id)
        )
        event_id: int | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return event_id
