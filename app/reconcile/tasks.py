"""Jobs of the periodic reconciliation."""

from __future__ import annotations

from typing import Any

from app.reconcile import jobs, service
from app.worker.context import JobContext
from app.worker.queue import task


# One try: a failure is recorded on the connection and the next interval tries again.
@task(jobs.RUN_TASK, max_tries=1, keep_result_s=0)
async def reconcile_run(ctx: dict[str, Any], *, connection_id: int) -> None:
    await service.reconcile(JobContext.of(ctx).resources, connection_id)


@task(jobs.SCHEDULE_TASK, keep_result_s=0)
async def reconcile_schedule(ctx: dict[str, Any]) -> None:
    await service.schedule(JobContext.of(ctx).resources)
