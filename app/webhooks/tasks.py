"""Jobs that apply received provider events to onOffice."""

from __future__ import annotations

from typing import Any

from app.webhooks import drain, jobs
from app.worker.queue import task


@task(jobs.APPLY_TASK, keep_result_s=0)
async def webhooks_apply(
    ctx: dict[str, Any], *, connection_id: int, owner: str | None = None, step: int = 0
) -> None:
    """The connection's drain: continues as `owner` (a hand-over) or claims the drain first
    (a kick; a no-op while another drain owns the connection)."""
    await drain.run_drain(ctx["resources"], connection_id, owner, step=step)


@task(jobs.SWEEP_TASK, keep_result_s=0)
async def webhooks_sweep(ctx: dict[str, Any]) -> None:
    await drain.sweep(ctx["resources"])
