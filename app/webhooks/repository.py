"""Every query on received events (`inbound_event`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import InboundEvent, InboundEventStatus

# Rows per INSERT: far below SQLite's bound-parameter limit, few round trips for a batch of 500.
INSERT_CHUNK = 100


class InboundEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @classmethod
    def from_session(cls, session: AsyncSession) -> InboundEventRepository:
        return cls(session)

    def _insert(self) -> Any:
        bind = self.session.bind
        if bind is not None and bind.dialect.name == "sqlite":
            return sqlite.insert
        return postgresql.insert

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
        ids = await self.create_many_on_conflict_do_nothing(
            source=source,
            events=[(dedupe_key, payload)],
            received_at=received_at,
            connection_id=connection_id,
        )
        return ids[0] if ids else None

    async def create_many_on_conflict_do_nothing(
        self,
        *,
        source: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        received_at: datetime,
        connection_id: int | None = None,
    ) -> list[int]:
        """Store (dedupe_key, payload) pairs in a few multi-row INSERTs; the ids of the new
        ones in arrival order (keys stored before are skipped)."""
        insert = self._insert()
        ids: list[int] = []
        for start in range(0, len(events), INSERT_CHUNK):
            rows = [
                {
                    "source": source,
                    "dedupe_key": key[:255],
                    "payload": payload,
                    "connection_id": connection_id,
                    "status": InboundEventStatus.pending,
                    "attempts": 0,
                    "received_at": received_at,
                }
                for key, payload in events[start : start + INSERT_CHUNK]
            ]
            stmt = (
                insert(InboundEvent)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
                .returning(InboundEvent.id)
            )
            ids.extend((await self.session.execute(stmt)).scalars())
        return sorted(ids)

    # Removal bursts ("Archive All") ---------------------------------------------------------

    def _removals(self, connection_id: int, status: str) -> Any:
        return (
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == status,
            InboundEvent.source == "mailchimp",
            InboundEvent.dedupe_key.not_like("reconcile:%"),
        )

    async def pending_removals(self, connection_id: int, status: str) -> Sequence[InboundEvent]:
        stmt = select(InboundEvent).where(*self._removals(connection_id, status))
        return [
            e
            for e in (await self.session.execute(stmt)).scalars()
            if e.payload.get("type") == "deleted"
        ]

    async def set_status(self, event_ids: Sequence[int], status: str, **values: Any) -> None:
        if event_ids:
            await self.session.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(list(event_ids)))
                .values(status=status, **values)
                .execution_options(synchronize_session=False)
            )

    async def release(self, event: InboundEvent) -> None:
        """A held event goes back to pending, marked to be confirmed at the provider."""
        await self.session.execute(
            update(InboundEvent)
            .where(InboundEvent.id == event.id)
            .values(status=InboundEventStatus.pending, payload={**event.payload, "_released": True})
            .execution_options(synchronize_session=False)
        )

    async def count_held(self, connection_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(InboundEvent)
            .where(
                InboundEvent.connection_id == connection_id,
                InboundEvent.status == InboundEventStatus.held,
            )
        )
        return int((await self.session.execute(stmt)).scalar_one())
