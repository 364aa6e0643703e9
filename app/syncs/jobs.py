"""The full sync's task names, deterministic job ids (a re-enqueued step is not queued twice)
and typed enqueue functions (buffered: sent after the surrounding transaction commits)."""

from __future__ import annotations

import time

from app.worker.queue import enqueue_job

READ_TASK = "sync.read"
UPSERT_TASK = "sync.upsert_batch"
FINALIZE_TASK = "sync.finalize"
PULL_TASK = "sync.pull_tags"
APPROVE_TASK = "sync.approve_unsubscribes"
RESUME_TASK = "sync.resume"


def read_job_id(run_id: int, offset: int) -> str:
    return f"sync.read:{run_id}:{offset}"


def batch_job_id(run_id: int, batch_no: int) -> str:
    return f"sync.upsert:{run_id}:{batch_no}"


def finalize_job_id(run_id: int) -> str:
    return f"sync.finalize:{run_id}"


def pull_job_id(run_id: int, start: int) -> str:
    return f"sync.pull_tags:{run_id}:{start}"


def enqueue_read(run_id: int, offset: int) -> None:
    """Read onOffice from `offset` on (the provider's list state first, if not read yet)."""
    enqueue_job(READ_TASK, _job_id=read_job_id(run_id, offset), run_id=run_id)


def enqueue_provider_read(run_id: int, provider_offset: int) -> None:
    """Continue reading the provider's list state (a new time slice of the read step)."""
    enqueue_job(READ_TASK, _job_id=f"{read_job_id(run_id, 0)}:p{provider_offset}", run_id=run_id)


def enqueue_batch(run_id: int, batch_no: int) -> None:
    enqueue_job(
        UPSERT_TASK, _job_id=batch_job_id(run_id, batch_no), run_id=run_id, batch_no=batch_no
    )


def enqueue_finalize(run_id: int) -> None:
    enqueue_job(FINALIZE_TASK, _job_id=finalize_job_id(run_id), run_id=run_id)


def enqueue_pull_tags(run_id: int, start: int) -> None:
    enqueue_job(PULL_TASK, _job_id=pull_job_id(run_id, start), run_id=run_id, start=start)


def enqueue_approve(run_id: int) -> None:
    """Carry out the approved held unsubscribes (each approval its own job: a user may
    approve a selection, then another)."""
    enqueue_job(APPROVE_TASK, _job_id=f"sync.approve:{run_id}:{time.time_ns()}", run_id=run_id)


def enqueue_unsubscribe_slice(run_id: int, *, approved: bool) -> None:
    """The next time slice of the stale unsubscribes (a fresh id each: every slice runs)."""
    enqueue_job(
        APPROVE_TASK if approved else FINALIZE_TASK,
        _job_id=f"{finalize_job_id(run_id)}:stale:{time.time_ns()}",
        run_id=run_id,
    )
