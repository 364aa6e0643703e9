"""The incremental sync's jobs: task names, deterministic job ids and typed enqueue functions
(callers never spell a task name)."""

from __future__ import annotations

import time

from app.inbox.jobs import DRAIN_TASKS, Stream
from app.worker.queue import enqueue_job

DRAIN_TASK = DRAIN_TASKS[Stream.onoffice]
POLL_TASK = "incremental.poll"
SCHEDULE_TASK = "incremental.schedule"


def poll_job_id(connection_id: int) -> str:
    """One scheduled poll per connection and 10-second slot."""
    return f"{POLL_TASK}:{connection_id}:{int(time.time() // 10)}"


def enqueue_poll(connection_id: int, *, now: bool = False) -> None:
    """A poll of the connection's changes. `now` (a user's request) is not merged with the
    scheduled one, but has one 10-second slot per connection of its own: a user's click pulls
    a poll forward, any number of clicks cannot multiply it (one queued job per slot)."""
    job_id = f"{POLL_TASK}:{connection_id}:now:{int(time.time() // 10)}" if now else None
    enqueue_job(
        POLL_TASK, _job_id=job_id or poll_job_id(connection_id), connection_id=connection_id
    )


def enqueue_drain(connection_id: int, reason: str, *, defer_s: float | None = None) -> None:
    """Kick the connection's drain of pending "address saved" events (buffered: sent after the
    commit; it claims the connection's flag, a no-op while another drain owns it); `reason`
    makes the job id (an event id, or "retry:<id>" / "person:<id>")."""
    options = {"_defer_by": defer_s} if defer_s else {}
    enqueue_job(
        DRAIN_TASK,
        _job_id=f"{DRAIN_TASK}:{connection_id}:{reason}",
        connection_id=connection_id,
        **options,
    )
