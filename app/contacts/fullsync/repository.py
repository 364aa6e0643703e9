"""The ledger queries of the end of a full sync (part of `ContactRepository`): which contacts
may be unsubscribed as "left onOffice" (only those the run's re-read by id confirmed, never one
a later run claimed or the incremental push wrote since the run started), and the tags of the
run's copy of the provider's list state, which the tag merge reads and the batches keep current.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.rules import UNSUBSCRIBED_STATES
from app.db.models import Contact, ProviderMember, SyncRun
from app.db.repository import lookup


class FullSyncQueries:
    session: AsyncSession

    def _not_seen(self, connection_id: int, run_id: int) -> tuple[Any, ...]:
        """Subscribed contacts this run has not claimed (nor a later run), and which the
        incremental push did not write since the run started."""
        started = select(SyncRun.started_at).where(SyncRun.id == run_id).scalar_subquery()
        return (
            Contact.connection_id == connection_id,
            Contact.subscribed.is_(True),
            (Contact.last_run_id.is_(None)) | (Contact.last_run_id < run_id),
            (Contact.pushed_at.is_(None)) | (Contact.pushed_at < started),
        )

    def _stale(self, connection_id: int, run_id: int) -> Any:
        # Only what this run's re-read by id confirmed (`mark_stale`) is stale.
        return (*self._not_seen(connection_id, run_id), Contact.stale_run_id == run_id)

    async def unchecked_stale(
        self, connection_id: int, run_id: int, after_id: int, limit: int
    ) -> Sequence[Contact]:
        """Candidates for "left onOffice" that this run has not re-read yet, in id order."""
        stmt = (
            select(Contact)
            .where(
                *self._not_seen(connection_id, run_id),
                (Contact.stale_run_id.is_(None)) | (Contact.stale_run_id != run_id),
                Contact.id > after_id,
            )
            .order_by(Contact.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def unseen_opt_outs(
        self, connection_id: int, run_id: int
    ) -> Sequence[tuple[Contact, str, datetime | None]]:
        """Known contacts this run did not claim (no newsletter-Yes address read) and the
        incremental push did not write since it started, whose member this run read as
        unsubscribed or blacklisted: (contact, status read, its time)."""
        started = select(SyncRun.started_at).where(SyncRun.id == run_id).scalar_subquery()
        stmt = (
            select(Contact, ProviderMember.status, ProviderMember.changed_at)
            .join(
                ProviderMember,
                (ProviderMember.connection_id == Contact.connection_id)
                & (ProviderMember.email == Contact.email),
            )
            .where(
                Contact.connection_id == connection_id,
                ProviderMember.run_id == run_id,
                ProviderMember.status.in_(UNSUBSCRIBED_STATES),
                (Contact.provider_status.is_(None))
                | (Contact.provider_status.not_in(UNSUBSCRIBED_STATES)),
                (Contact.last_run_id.is_(None)) | (Contact.last_run_id < run_id),
                (Contact.pushed_at.is_(None)) | (Contact.pushed_at < started),
            )
            .order_by(Contact.id)
        )
        return [(c, s, at) for c, s, at in (await self.session.execute(stmt)).all()]

    async def mark_stale(self, contact_ids: Sequence[int], run_id: int | None) -> None:
        """Record that `run_id`'s re-read confirmed these contacts left onOffice (None: they
        did not after all)."""
        if contact_ids:
            await self.session.execute(
                update(Contact)
                .where(Contact.id.in_(list(contact_ids)))
                .values(stale_run_id=run_id)
                .execution_options(synchronize_session=False)
            )

    async def count_stale(self, connection_id: int, run_id: int) -> int:
        """Subscribed contacts this run did not see among the newsletter-Yes addresses and
        whose re-read confirmed it."""
        stmt = select(func.count()).select_from(Contact).where(*self._stale(connection_id, run_id))
        return int((await self.session.execute(stmt)).scalar_one())

    async def stale(self, connection_id: int, run_id: int, limit: int) -> Sequence[Contact]:
        stmt = (
            select(Contact)
            .where(*self._stale(connection_id, run_id))
            .order_by(Contact.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def member_tags(
        self, connection_id: int, run_id: int, emails: Iterable[str]
    ) -> dict[str, list[str]]:
        """This run's read of the provider's tags for these emails (members it found)."""
        wanted = list(set(emails))
        if not wanted:
            return {}
        table = cast(Table, ProviderMember.__table__)
        stmt = lookup(
            self.session,
            [table.c.email, table.c.tags],
            table.c.email,
            wanted,
            table.c.connection_id == connection_id,
            table.c.run_id == run_id,
        )
        rows = (await self.session.execute(stmt)).all()
        return {row.email: list(row.tags or []) for row in rows}

    async def set_member_tags(
        self, connection_id: int, run_id: int, tags: dict[str, list[str]]
    ) -> None:
        """Keep this run's copy of the list state current with the tags the run itself set."""
        if not tags:
            return
        table = cast(Table, ProviderMember.__table__)
        stmt = (
            table.update()
            .where(
                table.c.connection_id == connection_id,
                table.c.run_id == run_id,
                table.c.email == bindparam("member_email"),
            )
            .values(tags=bindparam("member_tags"))
        )
        await self.session.execute(
            stmt, [{"member_email": e, "member_tags": t} for e, t in tags.items()]
        )
