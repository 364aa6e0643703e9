"""Every query of the sync preview."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from app.db.models import Contact, PreviewItem, SyncPreview
from app.db.repository import SessionRepository, search_match


class PreviewRepository(SessionRepository):
    async def add(self, preview: SyncPreview) -> SyncPreview:
        self.session.add(preview)
        await self.session.flush()
        return preview

    async def get(self, preview_id: int) -> SyncPreview | None:
        return await self.session.get(SyncPreview, preview_id)

    async def for_connection(self, preview_id: int, connection_id: int) -> SyncPreview | None:
        stmt = select(SyncPreview).where(
            SyncPreview.id == preview_id, SyncPreview.connection_id == connection_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest(self, connection_id: int) -> SyncPreview | None:
        stmt = (
            select(SyncPreview)
            .where(SyncPreview.connection_id == connection_id)
            .order_by(SyncPreview.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def delete_others(self, connection_id: int, keep_id: int) -> None:
        """A connection keeps its newest preview only (with its items)."""
        old = select(SyncPreview.id).where(
            SyncPreview.connection_id == connection_id, SyncPreview.id != keep_id
        )
        await self.session.execute(delete(PreviewItem).where(PreviewItem.preview_id.in_(old)))
        await self.session.execute(
            delete(SyncPreview).where(
                SyncPreview.connection_id == connection_id, SyncPreview.id != keep_id
            )
        )

    async def update_preview(self, preview_id: int, **values: Any) -> None:
        await self.session.execute(
            update(SyncPreview).where(SyncPreview.id == preview_id).values(**values)
        )

    async def add_items(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(PreviewItem), list(rows))

    @staticmethod
    def _filter(preview_id: int, outcome: str | None, search: str | None) -> list[Any]:
        where: list[Any] = [PreviewItem.preview_id == preview_id]
        if outcome == "written_back":
            where.append(PreviewItem.onoffice_write.is_not(None))
        elif outcome:
            where.append(PreviewItem.outcome == outcome)
        match = search_match(PreviewItem.email, PreviewItem.address_id, search)
        if match is not None:
            where.append(match)
        return where

    async def items(
        self,
        preview_id: int,
        *,
        after_id: int = 0,
        limit: int = 1000,
        offset: int = 0,
        outcome: str | None = None,
        search: str | None = None,
    ) -> Sequence[PreviewItem]:
        stmt = (
            select(PreviewItem)
            .where(*self._filter(preview_id, outcome, search), PreviewItem.id > after_id)
            .order_by(PreviewItem.id)
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def count_items(
        self, preview_id: int, *, outcome: str | None = None, search: str | None = None
    ) -> int:
        stmt = (
            select(func.count())
            .select_from(PreviewItem)
            .where(*self._filter(preview_id, outcome, search))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def subscribed_emails(self, connection_id: int) -> set[str]:
        """The contacts the ledger keeps subscribed (a run unsubscribes those it does not
        find among the newsletter-Yes addresses)."""
        stmt = select(Contact.email).where(
            Contact.connection_id == connection_id, Contact.subscribed.is_(True)
        )
        return set((await self.session.execute(stmt)).scalars().all())
