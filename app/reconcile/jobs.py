"""The reconciliation's jobs: task names, deterministic job ids and typed enqueue functions
(callers never spell a task name)."""

from __future__ import annotations

import time

from app.worker.queue import enqueue_job

RUN_TASK = "reconcile.run"
SCHEDULE_TASK = "reconcile.schedule"


def enqueue_run(connection_id: int, interval_s: float) -> None:
    """One reconciliation of the connection per interval slot (a schedule tick that finds it
    due again before it ran adds nothing)."""
    slot = int(time.time() // max(1.0, interval_s))
    enqueue_job(RUN_TASK, _job_id=f"{RUN_TASK}:{connection_id}:{slot}", connection_id=connection_id)
