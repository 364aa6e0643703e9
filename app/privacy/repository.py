"""Every query of the data-protection domain: purges by age and erasure by person or tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, false, func, or_, select, update

from app.db.models import (
    Connection,
    ConsentHistory,
    Contact,
    HeldUnsubscribe,
    InboundEvent,
    InboundEventStatus,
    ParkedContact,
    PreviewItem,
    Problem,
    ProviderMember,
    SyncBatch,
    SyncPreview,
    SyncRun,
    SyncRunStatus,
    SyncTagAdd,
    Tenant,
)
from app.db.repository import SessionRepository
from app.inbox.jobs import ONOFFICE_SOURCE

FINISHED = (SyncRunStatus.completed, SyncRunStatus.failed, SyncRunStatus.cancelled)
SETTLED = (InboundEventStatus.applied, InboundEventStatus.ignored, InboundEventStatus.unconfirmed)


class PrivacyRepository(SessionRepository):
    # -- retention ---------------------------------------------------------------------------

    async def purge_settled_events(self, before: datetime, limit: int) -> int:
        """Applied, ignored and unconfirmed events received before `before` (at most `limit`)."""
        ids = (
            select(InboundEvent.id)
            .where(InboundEvent.status.in_(SETTLED), InboundEvent.received_at < before)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self.session.execute(
            delete(InboundEvent)
            .where(InboundEvent.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def expired_runs(self, before: datetime, limit: int) -> list[int]:
        """Finished runs older than `before` that still hold per-address details, without the
        latest finished run of each connection (its problem list stays on the status page)."""
        latest = (
            select(func.max(SyncRun.id))
            .where(SyncRun.status.in_(FINISHED))
            .group_by(SyncRun.connection_id)
            .scalar_subquery()
        )
        with_details = or_(
            select(Problem.id).where(Problem.run_id == SyncRun.id).exists(),
            select(SyncBatch.id).where(SyncBatch.run_id == SyncRun.id).exists(),
            select(SyncTagAdd.id).where(SyncTagAdd.run_id == SyncRun.id).exists(),
            select(HeldUnsubscribe.id).where(HeldUnsubscribe.run_id == SyncRun.id).exists(),
        )
        stmt = (
            select(SyncRun.id)
            .where(
                SyncRun.status.in_(FINISHED),
                SyncRun.finished_at < before,
                SyncRun.id.not_in(latest),
                with_details,
            )
            .order_by(SyncRun.id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def purge_run_details(self, run_ids: Sequence[int]) -> int:
        """Problems, batches and tag rows of the runs (the run row keeps its counts)."""
        removed = 0
        for model in (Problem, SyncBatch, SyncTagAdd, HeldUnsubscribe):
            result = await self.session.execute(
                delete(model)
                .where(model.run_id.in_(list(run_ids)))
                .execution_options(synchronize_session=False)
            )
            removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return removed

    async def tenants_to_purge(self, deactivated_before: datetime) -> list[str]:
        stmt = select(Tenant.customer_web_id).where(
            Tenant.active.is_(False),
            Tenant.deactivated_at.is_not(None),
            Tenant.deactivated_at < deactivated_before,
        )
        return list((await self.session.execute(stmt)).scalars())

    # -- erasure -------------------------------------------------------------------------------

    async def tenant(self, customer_web_id: str) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.customer_web_id == customer_web_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def connections(self, tenant_id: int) -> list[Connection]:
        stmt = select(Connection).where(Connection.tenant_id == tenant_id)
        return list((await self.session.execute(stmt)).scalars())

    async def forget_email(
        self, tenant_id: int, connection_ids: Sequence[int], email: str
    ) -> dict[str, int]:
        """Delete every row of the tenant that holds `email` (normalised); returns the rows
        removed per table."""
        ids = list(connection_ids)
        removed: dict[str, int] = {}
        contacts = (
            await self.session.execute(
                select(Contact.address_id, Contact.other_address_ids).where(
                    Contact.connection_id.in_(ids), Contact.email == email
                )
            )
        ).all()
        # The person's rows in the ledgers of lists the connection left (parked by a switch).
        parked = (
            await self.session.execute(
                select(ParkedContact.data).where(
                    ParkedContact.tenant_id == tenant_id, ParkedContact.email == email
                )
            )
        ).scalars()
        found: list[tuple[Any, Any]] = [(row[0], row[1]) for row in contacts]
        found += [(data.get("address_id"), data.get("other_address_ids")) for data in parked]
        address_ids: set[int] = set()
        for address_id, others in found:
            if address_id is not None:
                address_ids.add(int(address_id))
            address_ids.update(int(a) for a in others or [])
        runs = select(SyncRun.id).where(SyncRun.connection_id.in_(ids)).scalar_subquery()
        same_email = func.lower(func.trim(Problem.email)) == email
        by_address = Problem.address_id.in_(sorted(address_ids)) if address_ids else None
        problem_match = or_(same_email, by_address) if by_address is not None else same_email
        statements: list[tuple[str, Any]] = [
            (
                "contact",
                delete(Contact).where(Contact.connection_id.in_(ids), Contact.email == email),
            ),
            (
                "parked_contact",
                delete(ParkedContact).where(
                    ParkedContact.tenant_id == tenant_id, ParkedContact.email == email
                ),
            ),
            (
                "provider_member",
                delete(ProviderMember).where(
                    ProviderMember.connection_id.in_(ids), ProviderMember.email == email
                ),
            ),
            ("problem", delete(Problem).where(Problem.run_id.in_(runs), problem_match)),
            (
                "sync_tag_add",
                delete(SyncTagAdd).where(SyncTagAdd.run_id.in_(runs), SyncTagAdd.email == email),
            ),
            (
                "held_unsubscribe",
                delete(HeldUnsubscribe).where(
                    HeldUnsubscribe.run_id.in_(runs), HeldUnsubscribe.email == email
                ),
            ),
            (
                "consent_history",
                delete(ConsentHistory).where(
                    ConsentHistory.connection_id.in_(ids), ConsentHistory.email == email
                ),
            ),
        ]
        previews = select(SyncPreview.id).where(SyncPreview.connection_id.in_(ids))
        preview_match = or_(
            PreviewItem.email == email,
            PreviewItem.address_id.in_(sorted(address_ids)) if address_ids else false(),
        )
        statements.append(
            (
                "preview_item",
                delete(PreviewItem).where(
                    PreviewItem.preview_id.in_(previews.scalar_subquery()), preview_match
                ),
            )
        )
        provider_event = and_(
            or_(InboundEvent.connection_id.in_(ids), InboundEvent.tenant_id == tenant_id),
            func.lower(InboundEvent.payload["email"].as_string()) == email,
        )
        event_match: Any = provider_event
        if address_ids:
            onoffice_event = and_(
                InboundEvent.source == ONOFFICE_SOURCE,
                InboundEvent.payload["tenant_id"].as_integer() == tenant_id,
                InboundEvent.payload["address_id"].as_integer().in_(sorted(address_ids)),
            )
            event_match = or_(provider_event, onoffice_event)
        statements.append(("inbound_event", delete(InboundEvent).where(event_match)))
        for table, stmt in statements:
            result = await self.session.execute(stmt.execution_options(synchronize_session=False))
            removed[table] = int(result.rowcount or 0)  # type: ignore[attr-defined]
        removed["sync_batch"] = await self._forget_in_batches(ids, email)
        return removed

    async def _forget_in_batches(self, connection_ids: list[int], email: str) -> int:
        """Drop the person's entries from stored batch payloads (a pending batch then does not
        send them)."""
        runs = select(SyncRun.id).where(SyncRun.connection_id.in_(connection_ids))
        batches = (
            await self.session.execute(
                select(SyncBatch.id, SyncBatch.payload).where(SyncBatch.run_id.in_(runs))
            )
        ).all()
        changed = 0
        for batch_id, payload in batches:
            kept = [c for c in payload or [] if str(c.get("email", "")).lower() != email]
            if len(kept) != len(payload or []):
                changed += 1
                await self.session.execute(
                    update(SyncBatch)
                    .where(SyncBatch.id == batch_id)
                    .values(payload=kept, size=len(kept))
                    .execution_options(synchronize_session=False)
                )
        return changed

    async def purge_tenant(self, tenant: Tenant) -> int:
        """Every row of the tenant: its events, then the tenant (connections, runs, problems,
        batches, the ledger and list state go with it: ON DELETE CASCADE)."""
        ids = [c.id for c in await self.connections(tenant.id)]
        conditions = [
            InboundEvent.tenant_id == tenant.id,
            and_(
                InboundEvent.source == ONOFFICE_SOURCE,
                InboundEvent.payload["tenant_id"].as_integer() == tenant.id,
            ),
        ]
        if ids:
            conditions.append(InboundEvent.connection_id.in_(ids))
        result = await self.session.execute(
            delete(InboundEvent)
            .where(or_(*conditions))
            .execution_options(synchronize_session=False)
        )
        runs = select(SyncRun.id).where(SyncRun.connection_id.in_(ids)).scalar_subquery()
        # Explicit (SQLite may not enforce the cascades).
        for stmt in (
            delete(Contact).where(Contact.connection_id.in_(ids)),
            delete(ConsentHistory).where(ConsentHistory.connection_id.in_(ids)),
            delete(ParkedContact).where(ParkedContact.tenant_id == tenant.id),
            delete(ProviderMember).where(ProviderMember.connection_id.in_(ids)),
            delete(Problem).where(Problem.run_id.in_(runs)),
            delete(SyncBatch).where(SyncBatch.run_id.in_(runs)),
            delete(SyncTagAdd).where(SyncTagAdd.run_id.in_(runs)),
            delete(HeldUnsubscribe).where(HeldUnsubscribe.run_id.in_(runs)),
            delete(PreviewItem).where(
                PreviewItem.preview_id.in_(
                    select(SyncPreview.id).where(SyncPreview.connection_id.in_(ids))
                )
            ),
            delete(SyncPreview).where(SyncPreview.connection_id.in_(ids)),
        ):
            await self.session.execute(stmt.execution_options(synchronize_session=False))
        await self.session.execute(
            delete(SyncRun)
            .where(SyncRun.connection_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            delete(Connection)
            .where(Connection.tenant_id == tenant.id)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            delete(Tenant)
            .where(Tenant.id == tenant.id)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
