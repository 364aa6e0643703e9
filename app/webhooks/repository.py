"""The webhook domain's own queries on the inbox: removal bursts ("Archive All") held for a
user and released (app/webhooks/outcomes.py). Every other query on `inbound_event` is the
inbox's (app/inbox/repository.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from app.connections.factory import BURST_SOURCES
from app.db.models import InboundEvent, InboundEventStatus
from app.inbox.repository import RECONCILE_REMOVAL, InboundEventRepository


class WebhookEventRepository(InboundEventRepository):
    def _removals(self, connection_id: int, status: str) -> Any:
        return (
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == status,
            or_(
                and_(
                    InboundEvent.source.in_(BURST_SOURCES),
                    InboundEvent.dedupe_key.not_like("reconcile:%"),
                ),
                InboundEvent.dedupe_key.like(f"{RECONCILE_REMOVAL}%"),
            ),
        )

    async def pending_removals(self, connection_id: int, status: str) -> Sequence[InboundEvent]:
        # The type is filtered in SQL: a drain asks before every batch, with thousands of other
        # events pending.
        stmt = select(InboundEvent).where(
            *self._removals(connection_id, status),
            InboundEvent.payload["type"].as_string() == "deleted",
        )
        return list((await self.session.execute(stmt)).scalars())

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
