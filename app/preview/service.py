"""Start a preview and present it (the per-address list as JSON pages or CSV)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.repository import ConnectionRepository
from app.connections.service import connection as connection_service
from app.db.base import aware
from app.db.models import PreviewItem, SyncPreview
from app.errors import Conflict, NotFound
from app.i18n import reasons, render_stored, t
from app.preview.jobs import enqueue_preview
from app.preview.repository import PreviewRepository
from app.preview.schemas import PreviewCounts, PreviewItemPage, PreviewItemRead, PreviewRead
from app.resources import Resources
from app.syncs.repository import SyncRepository
from app.syncs.service import csv_stream
from app.tenants.auth import TenantContext

SYNCED_OUTCOMES = ("created", "updated", "unchanged")


class PreviewService:
    async def start(
        self, session: AsyncSession, tenant: TenantContext, *, force: bool = False
    ) -> SyncPreview:
        """Queue a preview; a connection keeps only its newest one."""
        connection = await connection_service.get(session, tenant)
        await ConnectionRepository.from_session(session).lock(connection.id)
        active = await SyncRepository.from_session(session).active_run(connection.id)
        if active is not None:
            raise Conflict(
                "err.sync_active",
                params={"run": active.id, "status": f"@ui.st_{active.status}"},
                run_id=active.id,
            )
        if not connection.list_id:
            raise Conflict("err.no_list")
        repo = PreviewRepository.from_session(session)
        preview = await repo.add(
            SyncPreview(connection_id=connection.id, status="queued", force=force)
        )
        await repo.delete_others(connection.id, preview.id)
        enqueue_preview(preview.id)
        return preview

    async def get(
        self, session: AsyncSession, tenant: TenantContext, preview_id: int
    ) -> SyncPreview:
        connection = await connection_service.get(session, tenant)
        repo = PreviewRepository.from_session(session)
        preview = await repo.for_connection(preview_id, connection.id)
        if preview is None:
            raise NotFound("err.preview_not_found", params={"id": preview_id})
        return preview

    async def latest(self, session: AsyncSession, tenant: TenantContext) -> SyncPreview | None:
        connection = await connection_service.get(session, tenant)
        return await PreviewRepository.from_session(session).latest(connection.id)

    def to_read(self, preview: SyncPreview, lang: str) -> PreviewRead:
        return PreviewRead(
            id=preview.id,
            status=preview.status,
            created_at=aware(preview.created_at),
            finished_at=aware(preview.finished_at),
            error=render_stored(lang, preview.error),
            counts=PreviewCounts(**preview.counts) if preview.counts else None,
        )

    async def items(
        self,
        session: AsyncSession,
        tenant: TenantContext,
        preview_id: int,
        *,
        after: int,
        limit: int,
        offset: int,
        outcome: str | None,
        search: str | None,
        lang: str,
    ) -> PreviewItemPage:
        preview = await self.get(session, tenant, preview_id)
        repo = PreviewRepository.from_session(session)
        rows = await repo.items(
            preview.id, after_id=after, limit=limit, offset=offset, outcome=outcome, search=search
        )
        return PreviewItemPage(
            items=[item_read(r, lang) for r in rows],
            total=await repo.count_items(preview.id, outcome=outcome, search=search),
            next_cursor=rows[-1].id if len(rows) == limit else None,
        )

    async def items_csv(
        self,
        resources: Resources,
        tenant: TenantContext,
        preview_id: int,
        *,
        outcome: str | None,
        search: str | None,
        lang: str,
    ) -> AsyncIterator[str]:
        """Every item as CSV, page by page (memory stays flat)."""
        async with resources.sessionmaker() as session:
            preview = await self.get(session, tenant, preview_id)

        async def page(session: AsyncSession, after: int) -> Sequence[PreviewItem]:
            return await PreviewRepository.from_session(session).items(
                preview.id, after_id=after, limit=2000, outcome=outcome, search=search
            )

        def cells(row: PreviewItem) -> list[object]:
            i = item_read(row, lang)
            values: list[object] = [i.address_id, i.email, i.outcome, i.outcome_text]
            return [*values, i.reason, i.reason_code, i.onoffice_write or "", i.onoffice_write_text]

        head = ["address_id", "email", "outcome", "outcome_text", "reason", "reason_code"]
        head += ["onoffice_write", "onoffice_write_text"]
        async for chunk in csv_stream(resources, head, page, cells):
            yield chunk


def item_read(row: PreviewItem, lang: str) -> PreviewItemRead:
    reason = ""
    code = row.reason_code
    if row.outcome not in SYNCED_OUTCOMES:
        code = reasons.code_for(row.outcome, row.reason_code, row.reason)
        reason = reasons.render_reason(
            lang, row.outcome, row.reason_code, row.reason_params, row.reason
        )
    return PreviewItemRead(
        address_id=row.address_id,
        email=row.email,
        outcome=row.outcome,
        outcome_text=t(lang, f"ui.pv_out_{row.outcome}"),
        reason=reason,
        reason_code=code,
        onoffice_write=row.onoffice_write,
        onoffice_write_text=t(lang, f"ui.pv_write_{row.onoffice_write}")
        if row.onoffice_write
        else "",
    )


preview = PreviewService()
