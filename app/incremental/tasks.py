"""Jobs of the incremental sync (onOffice → provider)."""

from __future__ import annotations

from typing import Any

from app.inbox.drain import claim_token
from app.incremental import drain, jobs, poll
from app.worker.context import JobContext
from app.worker.queue import task


@task(jobs.DRAIN_TASK, keep_result_s=0)
async def incremental_drain(
    ctx: dict[str, Any], *, connection_id: int, owner: str | None = None, step: int = 0
) -> None:
    """The connection's drain of "address saved" events: continues as `owner` (a hand-over)
    or claims the drain first (a kick; a no-op while another drain owns the connection)."""
    job = JobContext.of(ctx)
    await drain.run_drain(
        job.resources,
        connection_id,
        owner,
        step=step,
        claim_as=claim_token(ctx, owner),
        **job.tries,
    )


@task(jobs.POLL_TASK, keep_result_s=0)
async def incremental_poll(ctx: dict[str, Any], *, connection_id: int) -> None:
    job = JobContext.of(ctx)
    await poll.poll(job.resources, connection_id, **job.tries)


@task(jobs.SCHEDULE_TASK, keep_result_s=0)
async def incremental_schedule(ctx: dict[str, Any]) -> None:
    await poll.schedule(JobContext.of(ctx).resources)
