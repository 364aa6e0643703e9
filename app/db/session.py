"""The transaction owner: commit, then send the jobs enqueued inside; roll back and drop them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.worker.queue import JobQueue, flush_jobs, job_buffer


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], queue: JobQueue
) -> AsyncIterator[AsyncSession]:
    with job_buffer() as jobs:
        async with sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                jobs.clear()
                raise
            await session.commit()
        await flush_jobs(queue, jobs)


class Database(Protocol):
    """What a job core needs of the database: sessions to read in, and units of work (commit,
    then send the jobs enqueued inside). `Resources` is one; a test may pass its own."""

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...
