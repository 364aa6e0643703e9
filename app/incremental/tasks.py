"""Jobs of the incremental sync (onOffice → provider)."""

from __future__ import annotations

from typing import Any

from app.incremental import engine
from app.worker.queue import task


@task("incremental.drain", keep_result_s=0)
async def incremental_drain(ctx: dict[str, Any]) -> None:
    await engine.drain(ctx["resources"], job_try=int(ctx.get("job_try", 1)))


@task("incremental.poll", keep_result_s=0)
async def incremental_poll(ctx: dict[str, Any], *, connection_id: int) -> None:
    await engine.poll(ctx["resources"], connection_id, job_try=int(ctx.get("job_try", 1)))


@task("incremental.schedule", keep_result_s=0)
async def incremental_schedule(ctx: dict[str, Any]) -> None:
    await engine.schedule(ctx["resources"])
