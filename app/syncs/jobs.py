"""The full sync's job ids (deterministic, so a re-enqueued step is not queued twice)."""

from __future__ import annotations


def read_job_id(run_id: int, offset: int) -> str:
    return f"sync.read:{run_id}:{offset}"


def batch_job_id(run_id: int, batch_no: int) -> str:
    return f"sync.upsert:{run_id}:{batch_no}"


def finalize_job_id(run_id: int) -> str:
    return f"sync.finalize:{run_id}"


def pull_job_id(run_id: int, start: int) -> str:
    return f"sync.pull_tags:{run_id}:{start}"
