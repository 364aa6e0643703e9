"""The gauges of /metrics, read at scrape time from the database and the queue (the counters are
in app/metrics.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import aware
from app.metrics import PENDING_WORK, POLL_LAG, POLL_LAG_MAX, QUEUE_DEPTH, SYNC_RUNS_ACTIVE
from app.status.repository import OperationsRepository

POLL_LAG_TOP = 20


class QueueDepth(Protocol):
    """What the gauges read of the job queue (app/worker/queue.py `JobQueue`)."""

    async def depth(self) -> tuple[str, int]: ...


async def refresh_gauges(queue: QueueDepth, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Queue depth, pending work, active runs and poll lag, read at scrape time."""
    label, depth = await queue.depth()
    QUEUE_DEPTH.labels(label).set(depth)
    async with sessionmaker() as session:
        gauges = await OperationsRepository.from_session(session).gauges(lagging=POLL_LAG_TOP)
    PENDING_WORK.labels("sync_chunks").set(gauges.pending_chunks)
    PENDING_WORK.labels("inbound_pending").set(gauges.inbound_pending)
    PENDING_WORK.labels("inbound_failed").set(gauges.inbound_failed)
    SYNC_RUNS_ACTIVE.set(gauges.active_runs)
    rows = gauges.watermarks
    now = datetime.now(UTC)
    POLL_LAG.clear()
    lags = []
    for connection_id, watermark in rows:
        if watermark is None:
            continue
        mark = aware(watermark)
        lag = max(0.0, (now - mark).total_seconds())
        lags.append(lag)
        POLL_LAG.labels(str(connection_id)).set(lag)
    POLL_LAG_MAX.set(max(lags) if lags else 0.0)
