"""Task names and job ids of the webhook domain."""

from __future__ import annotations

from app.worker.queue import enqueue_job

APPLY_TASK = "webhooks.apply"


def apply_job_id(connection_id: int, event_id: int | None = None) -> str:
    base = f"{APPLY_TASK}:{connection_id}"
    return base if event_id is None else f"{base}:{event_id}"


def enqueue_apply(connection_id: int, event_id: int | None = None) -> None:
    """Apply the connection's pending events (buffered: sent after the commit)."""
    enqueue_job(
        APPLY_TASK, _job_id=apply_job_id(connection_id, event_id), connection_id=connection_id
    )
