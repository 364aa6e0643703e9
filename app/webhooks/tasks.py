"""Jobs that apply received provider events to onOffice."""

from __future__ import annotations

from typing import Any

from app.inbox.drain import claim_token
from app.webhooks import checkup, drain, jobs
from app.worker.queue import task


@task(jobs.APPLY_TASK, keep_result_s=0)
async def webhooks_apply(
    ctx: dict[str, Any],
    *,
    connection_id: int,
    owner: str | None = None,
    step: int = 0,
    listing: dict[str, Any] | None = None,
) -> None:
    """The connection's drain: continues as `owner` (a hand-over, with the predecessor's
    `listing` cursor) or claims the drain first (a kick; a no-op while another drain owns the
    connection)."""
    claim_as = claim_token(ctx, owner)  # a kick claims the drain as this job
    await drain.run_drain(
        ctx["resources"], connection_id, owner, step=step, claim_as=claim_as, listing=listing
    )


@task(jobs.SWEEP_TASK, keep_result_s=0)
async def webhooks_sweep(ctx: dict[str, Any]) -> None:
    await drain.sweep(ctx["resources"])


@task(jobs.HEALTH_SWEEP_TASK, keep_result_s=0)
async def webhooks_health_sweep(ctx: dict[str, Any]) -> None:
    await checkup.schedule(ctx["resources"])


@task(jobs.HEALTH_TASK, keep_result_s=0)
async def webhooks_health(ctx: dict[str, Any], *, connection_id: int) -> None:
    """Check (and repair) one connection's webhook at its provider."""
    await checkup.check(ctx["resources"], connection_id)
