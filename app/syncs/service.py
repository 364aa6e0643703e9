"""Start syncs and present their state."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.connections.service import connection as connection_service
from app.db.base import aware
from app.db.models import Problem, SyncRun, SyncRunStatus
from app.decisions.service import approve_all
from app.errors import Conflict, NotFound
from app.i18n import reasons, render_stored
from app.lifecycle.cancel import cancel_run
from app.resources import Resources
from app.syncs.jobs import enqueue_read
from app.syncs.numbers import sync_counts
from app.syncs.repository import SyncRepository
from app.syncs.schemas import ProblemPage, ProblemRead, SyncProgress, SyncRunRead
from app.tenants.auth import TenantContext

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


async def csv_stream(
    resources: Resources,
    head: list[str],
    page: Callable[[AsyncSession, int], Awaitable[Sequence[Any]]],
    cells: Callable[[Any], list[object]],
) -> AsyncIterator[str]:
    """CSV text, the header first, then `page(session, after_id)` pages of rows (each with
    an `id`) until one is empty, each row as `cells(row)` made safe for spreadsheets."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(head)
    yield buffer.getvalue()
    after = 0
    while True:
        async with resources.sessionmaker() as session:
            rows = await page(session, after)
        if not rows:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([csv_cell(v) for v in cells(row)])
        yield buffer.getvalue()
        after = rows[-1].id


# Reading onOffice and sending batches overlap; reading is most of a run's time.
READ_SHARE = 0.85


def _overall_fraction(run: SyncRun) -> float | None:
    if run.status == SyncRunStatus.completed:
        return 1.0
    if run.reading_done:
        batches = run.batches_done / run.batches_total if run.batches_total else 1.0
        return READ_SHARE + (1 - READ_SHARE) * min(1.0, batches)
    if run.addresses_total:
        return READ_SHARE * min(1.0, run.addresses_read / run.addresses_total)
    return None


def _eta(elapsed: float | None, fraction: float | None) -> float | None:
    """Seconds left, extrapolated from the time taken so far (None until 2 % are done)."""
    if elapsed is None or fraction is None or fraction < 0.02:
        return None
    return max(0.0, elapsed * (1 - fraction) / fraction)


class SyncService:
    async def start(
        self, session: AsyncSession, tenant: TenantContext, *, force: bool = False
    ) -> SyncRun:
        connection = await connection_service.get(session, tenant)
        # Serialise concurrent starts for one connection (SQLite serialises writes anyway).
        await ConnectionRepository.from_session(session).lock(connection.id)
        repo = SyncRepository.from_session(session)
        active = await repo.active_run(connection.id)
        if active is not None:
            raise Conflict(
                "err.sync_active",
                params={"run": active.id, "status": f"@ui.st_{active.status}"},
                run_id=active.id,
            )
        if not connection.list_id:
            raise Conflict("err.no_list")
        if await OnOfficeAccessRepository.from_session(session).get(connection.id) is not None:
            raise Conflict("err.onoffice_access_refused")  # app/connections/access.py
        run = await repo.add_run(
            SyncRun(connection_id=connection.id, status=SyncRunStatus.queued, force=force)
        )
        enqueue_read(run.id, 0)
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
        # Every held contact, each decision in the history with the user (app.decisions).
        await approve_all(session, tenant, run.id)
        return run

    async def cancel(self, session: AsyncSession, tenant: TenantContext, run_id: int) -> SyncRun:
        """Stop a queued or running synchronisation (app/lifecycle/cancel.py)."""
        run = await self.get(session, tenant, run_id)
        await cancel_run(session, run)
        return run

    async def get(self, session: AsyncSession, tenant: TenantContext, run_id: int) -> SyncRun:
        connection = await connection_service.get(session, tenant)
        run = await SyncRepository.from_session(session).get_run_for_connection(
            run_id, connection.id
        )
        if run is None:
            raise NotFound("err.sync_not_found", params={"run": run_id})
        return run

    async def list(self, session: AsyncSession, tenant: TenantContext) -> list[SyncRun]:
        connection = await connection_service.get(session, tenant)
        return list(await SyncRepository.from_session(session).list_runs(connection.id))

    async def problems(
        self,
        session: AsyncSession,
        tenant: TenantContext,
        run_id: int,
        *,
        after: int,
        limit: int,
        offset: int = 0,
        kind: str | None = None,
        search: str | None = None,
        lang: str = "en",
    ) -> ProblemPage:
        run = await self.get(session, tenant, run_id)
        repo = SyncRepository.from_session(session)
        rows = await repo.problems(
            run.id, after_id=after, limit=limit, offset=offset, kind=kind, search=search
        )
        next_cursor = rows[-1].id if len(rows) == limit else None
        return ProblemPage(
            items=[problem_read(r, lang) for r in rows],
            total=await repo.count_problems(run.id, kind=kind, search=search),
            next_cursor=next_cursor,
            kinds=await repo.problem_kinds(run.id),
        )

    async def problems_csv(
        self,
        resources: Resources,
        tenant: TenantContext,
        run_id: int,
        *,
        lang: str = "en",
        kind: str | None = None,
        search: str | None = None,
    ) -> AsyncIterator[str]:
        """Stream every problem row as CSV, page by page (memory stays flat)."""
        async with resources.sessionmaker() as session:
            run = await self.get(session, tenant, run_id)

        async def page(session: AsyncSession, after: int) -> Sequence[Problem]:
            return await SyncRepository.from_session(session).problems(
                run.id, after_id=after, limit=2000, kind=kind, search=search
            )

        def cells(r: Problem) -> list[object]:
            item = problem_read(r, lang)
            return [r.address_id, r.email, r.kind, item.reason, item.reason_code, item.detail]

        head = ["address_id", "email", "kind", "reason", "reason_code", "detail"]
        async for chunk in csv_stream(resources, head, page, cells):
            yield chunk

    def to_read(self, run: SyncRun, provider: str | None = None, lang: str = "en") -> SyncRunRead:
        started, finished = aware(run.started_at), aware(run.finished_at)
        duration = None
        if started is not None:
            duration = ((finished or datetime.now(UTC)) - started).total_seconds()
        percent = None
        if run.status == SyncRunStatus.completed:
            percent = 100.0
        elif run.reading_done:
            percent = 100.0 * run.batches_done / run.batches_total if run.batches_total else 100.0
        overall = _overall_fraction(run)
        return SyncRunRead(
            id=run.id,
            status=run.status,
            created_at=aware(run.created_at),
            started_at=started,
            finished_at=finished,
            duration_s=duration,
            error=render_stored(lang, run.error),
            warning=render_stored(lang, run.warning),
            progress=SyncProgress(
                phase=run.phase,
                addresses_read=run.addresses_read,
                batches_total=run.batches_total,
                batches_done=run.batches_done,
                reading_done=run.reading_done,
                percent=percent,
                addresses_total=run.addresses_total,
                overall_percent=None if overall is None else round(100 * overall, 1),
                eta_s=_eta(duration, overall) if run.status == SyncRunStatus.running else None,
            ),
            counts=sync_counts(run, lang),
        )


sync = SyncService()


def problem_read(row: Problem, lang: str) -> ProblemRead:
    """One problem with its reason rendered in `lang` and the raw text as the detail."""
    code = reasons.code_for(row.kind, row.reason_code, row.reason)
    return ProblemRead(
        address_id=row.address_id,
        email=row.email,
        kind=row.kind,
        reason=reasons.render_reason(
            lang, row.kind, row.reason_code, row.reason_params, row.reason
        ),
        reason_code=code,
        detail=reasons.problem_detail(
            row.kind, row.reason_code, row.reason, lang, row.reason_params
        ),
    )
