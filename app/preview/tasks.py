"""The preview's job (payload: the preview's id)."""

from __future__ import annotations

from typing import Any

from app.preview.jobs import PREVIEW_TASK
from app.preview.run import run_preview
from app.worker.context import JobContext
from app.worker.queue import task


# One pass over both sides in one job, within WORKER_JOB_TIMEOUT_S (no own timeout: arq keeps a
# dead worker's jobs for the largest timeout of any task, which would delay every resume).
@task(PREVIEW_TASK, keep_result_s=0, max_tries=1)
async def sync_preview(ctx: dict[str, Any], *, preview_id: int) -> None:
    await run_preview(JobContext.of(ctx).resources, preview_id)
