"""Thin job wrappers around the full sync's steps (payloads carry ids only). Every step runs on
the bulk queue; the resume sweep is interactive, like the other sweeps."""

from __future__ import annotations

from typing import Any

from app.syncs import finish, pull, read, send
from app.syncs.jobs import (
    APPROVE_TASK,
    FINALIZE_TASK,
    PULL_TASK,
    READ_TASK,
    RESUME_TASK,
    UPSERT_TASK,
)
from app.worker.context import JobContext
from app.worker.queue import Queue, task


@task(READ_TASK, queue=Queue.bulk, keep_result_s=0)
async def sync_read(ctx: dict[str, Any], *, run_id: int) -> None:
    job = JobContext.of(ctx)
    await read.read(job.resources, run_id, **job.tries)


@task(UPSERT_TASK, queue=Queue.bulk, keep_result_s=0)
async def sync_upsert_batch(ctx: dict[str, Any], *, run_id: int, batch_no: int) -> None:
    job = JobContext.of(ctx)
    await send.upsert_batch(job.resources, run_id, batch_no, **job.tries)


@task(FINALIZE_TASK, queue=Queue.bulk, keep_result_s=0)
async def sync_finalize(ctx: dict[str, Any], *, run_id: int) -> None:
    job = JobContext.of(ctx)
    await finish.finalize(job.resources, run_id, **job.tries)


@task(PULL_TASK, queue=Queue.bulk, keep_result_s=0)
async def sync_pull_tags(ctx: dict[str, Any], *, run_id: int, start: int) -> None:
    job = JobContext.of(ctx)
    await pull.pull_tags(job.resources, run_id, start, **job.tries)


@task(APPROVE_TASK, queue=Queue.bulk, keep_result_s=0)
async def sync_approve_unsubscribes(ctx: dict[str, Any], *, run_id: int) -> None:
    job = JobContext.of(ctx)
    await finish.approve_unsubscribes(job.resources, run_id, **job.tries)


@task(RESUME_TASK, keep_result_s=0)
async def sync_resume(ctx: dict[str, Any]) -> None:
    job = JobContext.of(ctx)
    await finish.resume_unfinished(
        job.resources, stale_after_s=job.resources.settings.WORKER_JOB_TIMEOUT_S + 30, quick=True
    )
