"""Jobs of the incremental sync (onOffice → provider)."""

from __future__ import annotations

from typing import Any

from app.incremental import drain, jobs, poll
from app.worker.queue import task


@task(jobs.DRAIN_TASK, keep_result_s=0)
async def incremental_drain(ctx: dict[str, Any]) -> None:
    await drain.drain(ctx["resources"], job_try=int(ctx.get("job_try", 1)))


@task(jobs.POLL_TASK, keep_result_s=0)
async def incremental_poll(ctx: dict[str, Any], *, connection_id: int) -> None:
    await poll.poll(ctx["resources"], connection_id, job_try=int(ctx.get("job_try", 1)))


@task(jobs.SCHEDULE_TASK, keep_result_s=0)
async def incremental_schedule(ctx: dict[str, Any]) -> None:
    await poll.schedule(ctx["resources"])
