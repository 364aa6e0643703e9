"""Every query on received events (`inbound_event`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.connections.factory import BURST_SOURCES
from app.db.models import InboundEvent, InboundEventStatus, Problem, ProblemKind, SyncRun
from app.db.repository import SessionRepository, dialect_insert

# Rows per INSERT: far below SQLite's bound-parameter limit, few round trips for a batch of 500.
INSERT_CHUNK = 100


class InboundEventRepository(SessionRepository):
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
        return await _insert_events(
            self.session,
            source=source,
            events=events,
            received_at=received_at,
            connection_id=connection_id,
        )

    @staticmethod
    async def ingest(
        conn: AsyncConnection,
        *,
        source: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        received_at: datetime,
        connection_id: int | None,
    ) -> list[int]:
        """Ingest's one INSERT (deduplicated), on a plain connection: no ORM session, whose
        bookkeeping cost more CPU than the statement itself. Ids of the new events in order."""
        return await _insert_events(
            conn,
            source=source,
            events=events,
            received_at=received_at,
            connection_id=connection_id,
        )

    # Removal bursts ("Archive All") ---------------------------------------------------------

    def _removals(self, connection_id: int, status: str) -> Any:
        return (
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == status,
            InboundEvent.source.in_(BURST_SOURCES),
            InboundEvent.dedupe_key.not_like("reconcile:%"),
        )

    async def pending_removals(self, connection_id: int, status: str) -> Sequence[InboundEvent]:
        # The type is filtered in SQL: a drain asks before every batch, with thousands of other
        # events pending.
        stmt = select(InboundEvent).where(
            *self._removals(connection_id, status),
            InboundEvent.payload["type"].as_string() == "deleted",
        )
        return list((await self.session.execute(stmt)).scalars())

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

    # Applying ------------------------------------------------------------------------------

    async def pending(
        self, *, limit: int, source: str | None = None, connection_id: int | None = None
    ) -> Sequence[InboundEvent]:
        """Pending events in arrival order, of one source or one connection."""
        stmt = select(InboundEvent).where(InboundEvent.status == InboundEventStatus.pending)
        if source is not None:
            stmt = stmt.where(InboundEvent.source == source)
        if connection_id is not None:
            stmt = stmt.where(InboundEvent.connection_id == connection_id)
        stmt = stmt.order_by(InboundEvent.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def first_pending_id(self, source: str) -> int | None:
        stmt = (
            select(InboundEvent.id)
            .where(InboundEvent.source == source, InboundEvent.status == InboundEventStatus.pending)
            .limit(1)
        )
        value: int | None = await self.session.scalar(stmt)
        return value

    async def connections_with_pending(self) -> list[int]:
        stmt = (
            select(InboundEvent.connection_id)
            .where(
                InboundEvent.status == InboundEventStatus.pending,
                InboundEvent.connection_id.is_not(None),
            )
            .distinct()
        )
        return [int(i) for i in (await self.session.execute(stmt)).scalars() if i is not None]

    async def set_payload(self, event_id: int, payload: dict[str, Any]) -> None:
        await self.session.execute(
            update(InboundEvent).where(InboundEvent.id == event_id).values(payload=payload)
        )

    async def update_events(
        self, event_ids: Sequence[int], *, tried: bool = False, **values: Any
    ) -> None:
        """Set columns of events; `tried` counts one more attempt."""
        if not event_ids:
            return
        if tried:
            values["attempts"] = InboundEvent.attempts + 1
        await self.session.execute(
            update(InboundEvent)
            .where(InboundEvent.id.in_(list(event_ids)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def counts_by_status(self, connection_id: int) -> dict[str, int]:
        stmt = (
            select(InboundEvent.status, func.count())
            .where(InboundEvent.connection_id == connection_id)
            .group_by(InboundEvent.status)
        )
        return {str(k): int(n) for k, n in (await self.session.execute(stmt)).all()}

    async def pending_besides(self, connection_id: int, event_ids: Iterable[int]) -> bool:
        """Whether the connection has a pending event other than `event_ids` (whatever its
        id: ids are taken before commit, so a later commit may carry a smaller id)."""
        stmt = select(InboundEvent.id).where(
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == InboundEventStatus.pending,
        )
        ids = list(event_ids)
        if ids:
            stmt = stmt.where(InboundEvent.id.not_in(ids))
        return (await self.session.scalar(stmt.limit(1))) is not None

    async def duplicate_address_ids(self, connection_id: int, emails: Sequence[str]) -> list[int]:
        """onOffice address ids the connection's full syncs reported as duplicates of one of
        `emails` (normalised); they may carry stray spaces an exact read would miss."""
        if not emails:
            return []
        stmt = (
            select(Problem.address_id)
            .join(SyncRun, SyncRun.id == Problem.run_id)
            .where(
                SyncRun.connection_id == connection_id,
                Problem.kind == ProblemKind.duplicate,
                func.lower(func.trim(Problem.email)).in_(list(set(emails))),
            )
            .distinct()
        )
        return [int(i) for i in (await self.session.execute(stmt)).scalars()]


async def _insert_events(
    db: AsyncSession | AsyncConnection,
    *,
    source: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    received_at: datetime,
    connection_id: int | None,
) -> list[int]:
    """Multi-row INSERTs of new events (known (source, dedupe_key) pairs skipped); the new ids
    in arrival order. `db` is an ORM session or a plain connection."""
    insert = dialect_insert(db)
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
        ids.extend((await db.execute(stmt)).scalars())
    return sorted(ids)
