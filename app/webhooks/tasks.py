"""Jobs that apply received provider events to onOffice."""

from __future__ import annotations

from typing import Any

from app.webhooks import apply
from app.worker.queue import task


@task("webhooks.apply", keep_result_s=0)
async def webhooks_apply(ctx: dict[str, Any], *, connection_id: int) -> None:
    await apply.apply_pending(
        ctx["resources"],
        connection_id,
        job_try=int(ctx.get("job_try", 1)),
        max_tries=ctx["settings"].WORKER_MAX_TRIES,
    )


@task("webhooks.sweep", keep_result_s=0)
async def webhooks_sweep(ctx: dict[str, Any]) -> None:
    await apply.sweep(ctx["resources"])
