"""Start syncs and present their state."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.service import connection as connection_service
from app.db.models import Connection, SyncRun, SyncRunStatus
from app.errors import Conflict, NotFound
from app.resources import Resources
from app.syncs.engine import read_job_id
from app.syncs.repository import SyncRepository
from app.syncs.schemas import ProblemPage, ProblemRead, SyncCounts, SyncProgress, SyncRunRead
from app.tenants.auth import TenantContext
from app.worker.queue import enqueue_job

# Cells a spreadsheet would read as a formula (OWASP "CSV injection"): emails and names come
# from onOffice, which fills them from web inquiry forms.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """`value` as a CSV cell that spreadsheet programs show as text, never as a formula:
    a leading =, +, -, @, tab or carriage return gets a single quote in front (OWASP)."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class SyncService:
    async def start(
        self, session: AsyncSession, tenant: TenantContext, *, force: bool = False
    ) -> SyncRun:
        connection = await connection_service.get(session, tenant)
        # Serialise concurrent starts for one connection (SQLite serialises writes anyway).
        await session.execute(
            select(Connection.id).where(Connection.id == connection.id).with_for_update()
        )
        repo = SyncRepository.from_session(session)
        active = await repo.active_run(connection.id)
        if active is not None:
            raise Conflict(
                f"synchronisation {active.id} is still {active.status}; wait for it to finish",
                run_id=active.id,
            )
        if not connection.list_id:
            raise Conflict("the connection has no list yet; save the API key again")
        run = await repo.add_run(
            SyncRun(connection_id=connection.id, status=SyncRunStatus.queued, force=force)
        )
        enqueue_job("sync.read", _job_id=read_job_id(run.id, 0), run_id=run.id)
        return run

    async def approve_unsubscribes(
        self, session: AsyncSession, tenant: TenantContext, run_id: int
    ) -> SyncRun:
        """Carry out the unsubscribes the safety valve held back in this run (only them)."""
        run = await self.get(session, tenant, run_id)
        if not run.held_unsubscribes:
            raise Conflict(f"synchronisation {run_id} holds back no unsubscribes")
        latest = await SyncRepository.from_session(session).latest_run(run.connection_id)
        if latest is not None and latest.id != run.id:
            raise Conflict("a newer synchronisation exists; check its result", run_id=latest.id)
        enqueue_job("sync.approve_unsubscribes", _job_id=f"sync.approve:{run.id}", run_id=run.id)
        return run

    async def get(self, session: AsyncSession, tenant: TenantContext, run_id: int) -> SyncRun:
        connection = await connection_service.get(session, tenant)
        run = await SyncRepository.from_session(session).get_run_for_connection(
            run_id, connection.id
        )
        if run is None:
            raise NotFound(f"synchronisation {run_id} not found")
        return run

    async def list(self, session: AsyncSession, tenant: TenantContext) -> list[SyncRun]:
        connection = await connection_service.get(session, tenant)
        return list(await SyncRepository.from_session(session).list_runs(connection.id))

    async def problems(
        self, session: AsyncSession, tenant: TenantContext, run_id: int, *, after: int, limit: int
    ) -> ProblemPage:
        run = await self.get(session, tenant, run_id)
        repo = SyncRepository.from_session(session)
        rows = await repo.problems(run.id, after_id=after, limit=limit)
        items = [
            ProblemRead(address_id=r.address_id, email=r.email, kind=r.kind, reason=r.reason)
            for r in rows
        ]
        next_cursor = rows[-1].id if len(rows) == limit else None
        return ProblemPage(
            items=items, total=await repo.count_problems(run.id), next_cursor=next_cursor
        )

    async def problems_csv(
        self, resources: Resources, tenant: TenantContext, run_id: int
    ) -> AsyncIterator[str]:
        """Stream every problem row as CSV, page by page (memory stays flat)."""
        async with resources.sessionmaker() as session:
            run = await self.get(session, tenant, run_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["address_id", "email", "kind", "reason"])
        yield buffer.getvalue()
        after = 0
        while True:
            async with resources.sessionmaker() as session:
                rows = await SyncRepository.from_session(session).problems(
                    run.id, after_id=after, limit=2000
                )
            if not rows:
                return
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            for r in rows:
                writer.writerow([csv_cell(v) for v in (r.address_id, r.email, r.kind, r.reason)])
            yield buffer.getvalue()
            after = rows[-1].id

    def to_read(self, run: SyncRun, provider: str | None = None) -> SyncRunRead:
        synced = run.created + run.updated + run.unchanged + run.synced_unspecified
        invalid = run.invalid_emails + run.missing_emails
        tells_outcome = run.synced_unspecified == 0
        started, finished = _aware(run.started_at), _aware(run.finished_at)
        duration = None
        if started is not None:
            duration = ((finished or datetime.now(UTC)) - started).total_seconds()
        percent = None
        if run.status == SyncRunStatus.completed:
            percent = 100.0
        elif run.reading_done:
            percent = 100.0 * run.batches_done / run.batches_total if run.batches_total else 100.0
        return SyncRunRead(
            id=run.id,
            status=run.status,
            created_at=_aware(run.created_at),
            started_at=started,
            finished_at=finished,
            duration_s=duration,
            error=run.error,
            warning=run.warning,
            progress=SyncProgress(
                phase=run.phase,
                addresses_read=run.addresses_read,
                batches_total=run.batches_total,
                batches_done=run.batches_done,
                reading_done=run.reading_done,
                percent=percent,
            ),
            counts=SyncCounts(
                onoffice_newsletter_total=run.onoffice_newsletter_total,
                synced=synced,
                created=run.created if tells_outcome else None,
                updated=run.updated if tells_outcome else None,
                unchanged=run.unchanged,
                duplicates=run.duplicates,
                invalid_emails=invalid,
                missing_emails=run.missing_emails,
                rejected=run.rejected,
                tags_pulled=run.tags_pulled,
                unsubscribed=run.unsubscribed,
                opted_out=run.opted_out,
                pending_optin=run.pending_optin,
                bounced=run.bounced,
                held_unsubscribes=run.held_unsubscribes,
                provider_subscribed=run.provider_subscribed,
                drift=run.drift,
                reconciled=run.onoffice_newsletter_total
                == synced
                + run.duplicates
                + invalid
                + run.rejected
                + run.opted_out
                + run.pending_optin
                + run.bounced
                and not run.drift,
            ),
        )


sync = SyncService()
