"""Queries for operators' gauges (read at scrape time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.db.models import Connection, InboundEvent, SyncBatch, SyncRun
from app.db.repository import SessionRepository


@dataclass(frozen=True)
class Gauges:
    pending_chunks: int
    inbound_pending: int
    inbound_failed: int
    active_runs: int
    watermarks: list[tuple[int, datetime]]


class OperationsRepository(SessionRepository):
    async def gauges(self, *, lagging: int) -> Gauges:
        """Pending work, active runs and the `lagging` oldest poll watermarks."""
        batches = await self.session.scalar(
            select(func.count()).select_from(SyncBatch).where(SyncBatch.status == "pending")
        )
        events = dict(
            (
                await self.session.execute(
                    select(InboundEvent.status, func.count())
                    .where(InboundEvent.status.in_(("pending", "failed")))
                    .group_by(InboundEvent.status)
                )
            ).all()
        )
        active = await self.session.scalar(
            select(func.count())
            .select_from(SyncRun)
            .where(SyncRun.status.in_(("queued", "running")))
        )
        rows = (
            await self.session.execute(
                select(Connection.id, Connection.onoffice_watermark)
                .where(Connection.onoffice_watermark.is_not(None))
                .order_by(Connection.onoffice_watermark)
                .limit(lagging)
            )
        ).all()
        return Gauges(
            pending_chunks=int(batches or 0),
            inbound_pending=int(events.get("pending", 0)),
            inbound_failed=int(events.get("failed", 0)),
            active_runs=int(active or 0),
            watermarks=[(int(i), w) for i, w in rows if w is not None],
        )
