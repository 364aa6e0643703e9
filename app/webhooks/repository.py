"""Every query on received events (`inbound_event`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.connections.factory import BURST_SOURCES
from app.db.models import (
    Connection,
    InboundEvent,
    InboundEventStatus,
    Problem,
    ProblemKind,
    SyncRun,
)
from app.db.repository import dialect_insert

# Rows per INSERT: far below SQLite's bound-parameter limit, few round trips for a batch of 500.
INSERT_CHUNK = 100
# The dedupe key column's length.
DEDUPE_KEY_MAX = 255


@dataclass(frozen=True)
class IngestRow:
    """One received event as ingest stores it; `dedupe_key` at most DEDUPE_KEY_MAX long."""

    source: str
    dedupe_key: str
    payload: dict[str, Any]
    connection_id: int
    received_at: datetime


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
    async def ingest(conn: AsyncConnection, rows: Sequence[IngestRow]) -> set[tuple[str, str]]:
        """Ingest's INSERT of a whole group of deliveries (deduplicated on (source,
        dedupe_key)), on a plain connection: no ORM session, whose bookkeeping cost more CPU
        than the statement. One statement compiled once and sent as multi-row INSERTs
        (SQLAlchemy's insertmanyvalues); the (source, dedupe_key) pairs that were new."""
        if not rows:
            return set()
        stmt = (
            dialect_insert(conn)(InboundEvent)
            .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
            .returning(InboundEvent.source, InboundEvent.dedupe_key)
        )
        params = [
            {
                "source": row.source,
                "dedupe_key": row.dedupe_key,
                "payload": row.payload,
                "connection_id": row.connection_id,
                "status": InboundEventStatus.pending,
                "attempts": 0,
                "received_at": row.received_at,
            }
            for row in rows
        ]
        result = await conn.execute(stmt, params)
        return {(str(source), str(key)) for source, key in result.all()}

    @staticmethod
    async def connection_fingerprints(
        conn: AsyncConnection, connection_ids: Collection[int]
    ) -> dict[int, tuple[str, str, str | None, str | None]]:
        """What ingest checked each connection by (provider, webhook token hash, bearer secret
        hash, list id), read in ingest's transaction: a delivery checked against a cached copy
        is stored only if these are unchanged. The rows are locked against deletion (FOR KEY
        SHARE) until the commit; saving a connection does not wait for it."""
        stmt = (
            select(
                Connection.id,
                Connection.provider,
                Connection.webhook_token,
                Connection.webhook_secret_hash,
                Connection.list_id,
            )
            .where(Connection.id.in_(sorted(connection_ids)))
            .with_for_update(read=True, key_share=True)
        )
        return {
            int(cid): (str(provider), str(token), secret, list_id)
            for cid, provider, token, secret, list_id in (await conn.execute(stmt)).all()
        }

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

    async def pending_after(self, connection_id: int, after_id: int) -> bool:
        """Whether a pending event of the connection arrived after `after_id`."""
        stmt = (
            select(InboundEvent.id)
            .where(
                InboundEvent.connection_id == connection_id,
                InboundEvent.status == InboundEventStatus.pending,
                InboundEvent.id > after_id,
            )
            .limit(1)
        )
        return (await self.session.scalar(stmt)) is not None

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
                "dedupe_key": key[:DEDUPE_KEY_MAX],
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
