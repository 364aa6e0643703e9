"""The preview's task name, job id and typed enqueue function (buffered: sent after the
surrounding transaction commits)."""

from __future__ import annotations

from app.worker.queue import enqueue_job

PREVIEW_TASK = "sync.preview"


def enqueue_preview(preview_id: int) -> None:
    enqueue_job(PREVIEW_TASK, _job_id=f"{PREVIEW_TASK}:{preview_id}", preview_id=preview_id)
