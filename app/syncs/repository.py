"""Every query of the sync domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update

from app.db.base import utcnow
from app.db.models import (
    Problem,
    ProblemKind,
    SyncBatch,
    SyncRun,
    SyncRunStatus,
    SyncTagAdd,
)
from app.db.repository import SessionRepository, among, insert_ignore, search_match

ACTIVE_STATUSES = (SyncRunStatus.queued, SyncRunStatus.running)
COUNTER_COLUMNS = (
    "out_of_scope",
    "onoffice_newsletter_total",
    "created",
    "updated",
    "unchanged",
    "synced_unspecified",
    "duplicates",
    "invalid_emails",
    "missing_emails",
    "rejected",
    "tags_pulled",
    "unsubscribed",
    "opted_out",
    "pending_optin",
    "bounced",
    "archived",
    "held_unsubscribes",
    "addresses_read",
    "batches_total",
    "batches_done",
    "chunks_total",
    "open_batch_size",
)


@dataclass(frozen=True)
class RunProgress:
    batches_done: int
    batches_total: int
    reading_done: bool
    status: str


class SyncRepository(SessionRepository):
    # Runs -------------------------------------------------------------------------------------

    async def duplicate_address_ids(self, connection_id: int, emails: Sequence[str]) -> list[int]:
        """onOffice address ids the connection's full syncs reported as duplicates of one of
        `emails` (normalised); they may carry stray spaces an exact read would miss."""
        if not emails:
            return []
        stmt = (
            select(Problem.address_id)
            .join(SyncRun, SyncRun.id == Problem.run_id)
            .where(
                SyncRun.connection_id == connection_id,
                Problem.kind == ProblemKind.duplicate,
                func.lower(func.trim(Problem.email)).in_(list(set(emails))),
            )
            .distinct()
        )
        return [int(i) for i in (await self.session.execute(stmt)).scalars()]

    async def get_run(self, run_id: int) -> SyncRun | None:
        return await self.session.get(SyncRun, run_id)

    async def get_run_for_connection(self, run_id: int, connection_id: int) -> SyncRun | None:
        stmt = select(SyncRun).where(SyncRun.id == run_id, SyncRun.connection_id == connection_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def active_run(self, connection_id: int) -> SyncRun | None:
        stmt = (
            select(SyncRun)
            .where(SyncRun.connection_id == connection_id, SyncRun.status.in_(ACTIVE_STATUSES))
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_run(self, connection_id: int) -> SyncRun | None:
        stmt = (
            select(SyncRun)
            .where(SyncRun.connection_id == connection_id)
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_completed_run(self, connection_id: int) -> SyncRun | None:
        stmt = (
            select(SyncRun)
            .where(
                SyncRun.connection_id == connection_id,
                SyncRun.status == SyncRunStatus.completed,
            )
            .order_by(SyncRun.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_runs(self, connection_id: int, limit: int = 20) -> Sequence[SyncRun]:
        stmt = (
            select(SyncRun)
            .where(SyncRun.connection_id == connection_id)
            .order_by(SyncRun.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def unfinished_runs(self) -> Sequence[SyncRun]:
        stmt = select(SyncRun).where(SyncRun.status.in_(ACTIVE_STATUSES)).order_by(SyncRun.id)
        return (await self.session.execute(stmt)).scalars().all()

    async def add_run(self, run: SyncRun) -> SyncRun:
        self.session.add(run)
        await self.session.flush()
        return run

    async def increment(self, run_id: int, **deltas: int) -> RunProgress:
        """Atomically add to the run's counters (several jobs update one run concurrently)."""
        values: dict[str, Any] = {
            name: getattr(SyncRun, name) + delta
            for name, delta in deltas.items()
            if delta and name in COUNTER_COLUMNS
        }
        if not values:
            run = await self.session.get(SyncRun, run_id)
            assert run is not None
            return RunProgress(run.batches_done, run.batches_total, run.reading_done, run.status)
        stmt = (
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(**values)
            .returning(
                SyncRun.batches_done, SyncRun.batches_total, SyncRun.reading_done, SyncRun.status
            )
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).one()
        return RunProgress(row[0], row[1], row[2], row[3])

    async def set_run(self, run_id: int, **values: Any) -> None:
        stmt = (
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    # Problems ---------------------------------------------------------------------------------

    async def problem_addresses(self, run_id: int, address_ids: Sequence[int]) -> set[int]:
        """Addresses of `address_ids` this run already recorded a problem for."""
        if not address_ids:
            return set()
        stmt = select(Problem.address_id).where(
            Problem.run_id == run_id, among(self.session, Problem.address_id, address_ids)
        )
        return {int(i) for i in (await self.session.execute(stmt)).scalars()}

    async def add_problems(self, rows: Sequence[dict[str, Any]]) -> int:
        return await insert_ignore(self.session, Problem, rows, ["run_id", "address_id"])

    @staticmethod
    def _problem_filter(run_id: int, kind: str | None, search: str | None) -> list[Any]:
        """Conditions for a run's problems: one kind, and/or an email substring or address id
        (the index on (run_id, kind, id) keeps 20,000 problems fast to page and filter)."""
        where: list[Any] = [Problem.run_id == run_id]
        if kind:
            where.append(Problem.kind == kind)
        match = search_match(Problem.email, Problem.address_id, search)
        if match is not None:
            where.append(match)
        return where

    async def problems(
        self,
        run_id: int,
        *,
        after_id: int = 0,
        limit: int = 1000,
        offset: int = 0,
        kind: str | None = None,
        search: str | None = None,
    ) -> Sequence[Problem]:
        stmt = (
            select(Problem)
            .where(*self._problem_filter(run_id, kind, search), Problem.id > after_id)
            .order_by(Problem.id)
            .offset(offset)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def count_problems(
        self, run_id: int, *, kind: str | None = None, search: str | None = None
    ) -> int:
        stmt = (
            select(func.count())
            .select_from(Problem)
            .where(*self._problem_filter(run_id, kind, search))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def problem_kinds(self, run_id: int) -> dict[str, int]:
        stmt = (
            select(Problem.kind, func.count())
            .where(Problem.run_id == run_id)
            .group_by(Problem.kind)
        )
        return {str(k): int(n) for k, n in (await self.session.execute(stmt)).all()}

    async def problem_reasons(self, run_id: int, kind: str) -> dict[str, int]:
        """How many problems of one kind each reason code has (the status card's held back)."""
        stmt = (
            select(Problem.reason_code, func.count())
            .where(Problem.run_id == run_id, Problem.kind == kind)
            .group_by(Problem.reason_code)
        )
        return {str(k): int(n) for k, n in (await self.session.execute(stmt)).all()}

    # Batches ----------------------------------------------------------------------------------

    def add_batch(self, batch: SyncBatch) -> None:
        self.session.add(batch)

    async def pending_chunks(self, run_id: int, batch_no: int) -> Sequence[SyncBatch]:
        stmt = (
            select(SyncBatch)
            .where(
                SyncBatch.run_id == run_id,
                SyncBatch.batch_no == batch_no,
                SyncBatch.status == "pending",
            )
            .order_by(SyncBatch.chunk_no)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def record_attempt(self, run_id: int, batch_no: int) -> None:
        """The batch's unsent chunks are being sent now (`attempts`, `updated_at`)."""
        stmt = (
            update(SyncBatch)
            .where(
                SyncBatch.run_id == run_id,
                SyncBatch.batch_no == batch_no,
                SyncBatch.status == "pending",
            )
            .values(attempts=SyncBatch.attempts + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def claim_pending_chunks(self, run_id: int, batch_no: int) -> list[int]:
        """Ids of the batch's unsent chunks, locked until this transaction ends: a second job
        recording the same batch waits, then finds them done (nothing is recorded twice)."""
        stmt = (
            select(SyncBatch.id)
            .where(
                SyncBatch.run_id == run_id,
                SyncBatch.batch_no == batch_no,
                SyncBatch.status == "pending",
            )
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def finish_chunks(self, chunk_ids: Sequence[int]) -> None:
        """Mark chunks sent; their payload is no longer needed."""
        if chunk_ids:
            await self.session.execute(
                update(SyncBatch)
                .where(SyncBatch.id.in_(list(chunk_ids)))
                .values(status="done", payload=[])
                .execution_options(synchronize_session=False)
            )

    async def pending_batch_numbers(self, run_id: int, closed_below: int) -> list[int]:
        """Closed batches (number < `closed_below`) that still have unsent chunks."""
        stmt = (
            select(SyncBatch.batch_no)
            .where(
                SyncBatch.run_id == run_id,
                SyncBatch.status == "pending",
                SyncBatch.batch_no < closed_below,
            )
            .distinct()
            .order_by(SyncBatch.batch_no)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def run_state(self, run_id: int) -> tuple[int, int, int]:
        """(batches_total, chunks_total, open_batch_size), read fresh."""
        stmt = select(SyncRun.batches_total, SyncRun.chunks_total, SyncRun.open_batch_size).where(
            SyncRun.id == run_id
        )
        row = (await self.session.execute(stmt)).one()
        return int(row[0]), int(row[1]), int(row[2])

    async def count_pending_batches(self, connection_id: int) -> int:
        """Provider batches of the connection's runs that still have unsent chunks."""
        pending = (
            select(SyncBatch.run_id, SyncBatch.batch_no)
            .join(SyncRun, SyncRun.id == SyncBatch.run_id)
            .where(SyncRun.connection_id == connection_id, SyncBatch.status == "pending")
            .distinct()
            .subquery()
        )
        return int(await self.session.scalar(select(func.count()).select_from(pending)) or 0)

    # Tags still to add (Mailchimp static segments) -------------------------------------------

    async def add_tag_adds(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:  # a Core executemany (the ORM's bulk insert cost more than the query)
            await self.session.execute(insert(cast(Table, SyncTagAdd.__table__)), list(rows))

    async def tags_with_pending(self, run_id: int, at_least: int = 1) -> dict[str, int]:
        """Tags of the run with at least `at_least` members waiting to be added, and how many
        wait (rows another transaction is sending included)."""
        stmt = (
            select(SyncTagAdd.tag, func.count())
            .where(SyncTagAdd.run_id == run_id)
            .group_by(SyncTagAdd.tag)
            .having(func.count() >= at_least)
            .order_by(SyncTagAdd.tag)
        )
        return {str(tag): int(n) for tag, n in (await self.session.execute(stmt)).all()}

    async def claim_tag_adds(self, run_id: int, tag: str, limit: int) -> Sequence[SyncTagAdd]:
        """Up to `limit` waiting members of a tag, locked for this transaction; rows another
        transaction holds are skipped (two workers never send the same members)."""
        stmt = (
            select(SyncTagAdd)
            .where(SyncTagAdd.run_id == run_id, SyncTagAdd.tag == tag)
            .order_by(SyncTagAdd.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def delete_tag_adds(self, ids: Sequence[int]) -> None:
        if ids:
            await self.session.execute(delete(SyncTagAdd).where(SyncTagAdd.id.in_(list(ids))))

    async def unsent_tag_emails(self, run_id: int) -> list[str]:
        stmt = select(SyncTagAdd.email).where(SyncTagAdd.run_id == run_id).distinct()
        return list((await self.session.execute(stmt)).scalars())
