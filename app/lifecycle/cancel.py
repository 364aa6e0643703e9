"""Cancelling a full sync (`POST /api/v1/syncs/{id}/cancel`).

The run's status becomes `cancelled` in one conditional update (only a queued or running run
is cancelled; a run that completed or failed meanwhile keeps its status). Every step of the
run checks the status when it loads the run and again before each page it reads or writes and
before each batch it sends (`stopped`), so no further page is read and no further batch is
sent. A batch already at the provider is still recorded with its results (the ledger always
says what the provider has), and contacts that were sent without the tags they still lack are
sent again by the next run. Nothing else of the run is undone.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.repository import ContactRepository
from app.db.base import utcnow
from app.db.models import SyncRun, SyncRunStatus
from app.errors import Conflict
from app.lifecycle.repository import LifecycleRepository
from app.metrics import SYNC_RUNS
from app.resources import Resources
from app.syncs.repository import SyncRepository

log = logging.getLogger(__name__)


async def cancel_run(session: AsyncSession, run: SyncRun) -> None:
    """Cancel `run` (already checked to belong to the caller); 409 when it is not active."""
    lifecycle = LifecycleRepository.from_session(session)
    ended = await lifecycle.end_run(
        run.id, status=SyncRunStatus.cancelled, phase="cancelled", finished_at=utcnow()
    )
    if not ended:
        raise Conflict(
            "err.sync_not_active", params={"run": run.id, "status": f"@ui.st_{run.status}"}
        )
    syncs = SyncRepository.from_session(session)
    unsent = await syncs.unsent_tag_emails(run.id)
    if unsent:
        # Sent without the tags they still lack: the next run sends them again.
        await ContactRepository.from_session(session).forget_synced(run.connection_id, unsent)
    await session.refresh(run)
    SYNC_RUNS.labels("cancelled").inc()
    log.info("sync.cancelled", extra={"run_id": run.id})


async def stopped(resources: Resources, run_id: int) -> bool:
    """Whether the run was cancelled (or is gone): its steps stop at the next page or batch."""
    async with resources.sessionmaker() as session:
        status = await LifecycleRepository.from_session(session).run_status(run_id)
    return status is None or status == SyncRunStatus.cancelled
