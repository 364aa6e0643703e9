"""Thin job wrappers around the sync engine (payloads carry ids only)."""

from __future__ import annotations

from typing import Any

from app.syncs import engine
from app.worker.queue import task


def _tries(ctx: dict[str, Any]) -> dict[str, int]:
    return {"job_try": int(ctx.get("job_try", 1)), "max_tries": ctx["settings"].WORKER_MAX_TRIES}


@task("sync.read", keep_result_s=0)
async def sync_read(ctx: dict[str, Any], *, run_id: int) -> None:
    await engine.read(ctx["resources"], run_id, **_tries(ctx))


@task("sync.upsert_batch", keep_result_s=0)
async def sync_upsert_batch(ctx: dict[str, Any], *, run_id: int, batch_no: int) -> None:
    await engine.upsert_batch(ctx["resources"], run_id, batch_no, **_tries(ctx))


@task("sync.finalize", keep_result_s=0)
async def sync_finalize(ctx: dict[str, Any], *, run_id: int) -> None:
    await engine.finalize(ctx["resources"], run_id, **_tries(ctx))


@task("sync.pull_tags", keep_result_s=0)
async def sync_pull_tags(ctx: dict[str, Any], *, run_id: int, start: int) -> None:
    await engine.pull_tags(ctx["resources"], run_id, start, **_tries(ctx))


@task("sync.approve_unsubscribes", keep_result_s=0)
async def sync_approve_unsubscribes(ctx: dict[str, Any], *, run_id: int) -> None:
    await engine.approve_unsubscribes(ctx["resources"], run_id, job_try=int(ctx.get("job_try", 1)))


@task("sync.resume", keep_result_s=0)
async def sync_resume(ctx: dict[str, Any]) -> None:
    settings = ctx["settings"]
    await engine.resume_unfinished(
        ctx["resources"], stale_after_s=settings.WORKER_JOB_TIMEOUT_S + 30
    )
