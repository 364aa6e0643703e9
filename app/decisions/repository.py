"""Every query of the decision lists."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from app.db.models import HeldUnsubscribe, InboundEvent, InboundEventStatus
from app.db.repository import SessionRepository


def _email(column: Any) -> Any:
    return func.lower(column)


class DecisionRepository(SessionRepository):
    async def held_unsubscribes(
        self,
        run_id: int,
        *,
        search: str | None,
        emails: Sequence[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[HeldUnsubscribe], int]:
        """The run's contacts still held (status `held`), filtered and paged; and how many
        match."""
        where = [HeldUnsubscribe.run_id == run_id, HeldUnsubscribe.status == "held"]
        where += self._filters(HeldUnsubscribe.email, search, emails, HeldUnsubscribe.address_id)
        total = await self.session.scalar(select(func.count()).where(*where))
        stmt = select(HeldUnsubscribe).where(*where).order_by(HeldUnsubscribe.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars()), int(total or 0)

    async def events(
        self,
        connection_id: int,
        status: str,
        *,
        search: str | None,
        emails: Sequence[str] | None = None,
        removals_only: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[InboundEvent], int]:
        """The connection's provider events in `status` (held bursts: removals only)."""
        email = InboundEvent.payload["email"].as_string()
        where: list[Any] = [
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == status,
        ]
        if removals_only:
            where.append(InboundEvent.payload["type"].as_string() == "deleted")
        where += self._filters(email, search, emails, None)
        total = await self.session.scalar(select(func.count()).where(*where))
        stmt = select(InboundEvent).where(*where).order_by(InboundEvent.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars()), int(total or 0)

    @staticmethod
    def _filters(
        email: Any, search: str | None, emails: Sequence[str] | None, address: Any
    ) -> list[Any]:
        where: list[Any] = []
        if emails is not None:
            where.append(_email(email).in_(list(emails)))
        if search:
            term = search.strip().lower()
            match = _email(email).contains(term, autoescape=True)
            if address is not None and term.isdigit():
                match = match | (address == int(term))
            where.append(match)
        return where

    async def retry_events(self, event_ids: Sequence[int]) -> None:
        """Failed events go back to pending with their tries counted from zero."""
        if event_ids:
            await self.session.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(list(event_ids)))
                .values(status=InboundEventStatus.pending, attempts=0, last_error=None)
                .execution_options(synchronize_session=False)
            )

    async def set_events_ignored(self, event_ids: Sequence[int], now: datetime) -> None:
        """Failed events a user dismissed: settled as ignored, never tried again."""
        if event_ids:
            await self.session.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(list(event_ids)))
                .values(
                    status=InboundEventStatus.ignored,
                    applied_at=now,
                    last_error="dismissed by a user",
                )
                .execution_options(synchronize_session=False)
            )
