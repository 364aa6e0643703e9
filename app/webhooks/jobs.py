"""The webhook domain's jobs: task names, deterministic job ids and typed enqueue functions
(callers never spell a task name).

Every drain job is `webhooks.apply`, the inbox's provider stream (`app/inbox/jobs.py`: the
job of an owner's hand-over, `drain_job`, and a later kick, `later_job`): a kick (`owner=None`,
claims the connection's drain flag first, a no-op while another drain owns it) or a hand-over to
the owner's next step.
"""

from __future__ import annotations

import time

from app.inbox.jobs import DRAIN_TASKS, Stream
from app.worker.queue import buffered, enqueue_job

APPLY_TASK = DRAIN_TASKS[Stream.provider]
SWEEP_TASK = "webhooks.sweep"
# The webhook health check (app/webhooks/checkup.py): the sweep finds the connections due, one
# check job each.
HEALTH_SWEEP_TASK = "webhooks.health_sweep"
HEALTH_TASK = "webhooks.health"


def enqueue_health_check(connection_id: int, interval_s: int) -> None:
    """One check per connection and interval slot, however often the sweep runs."""
    slot = int(time.time() // max(interval_s, 1))
    enqueue_job(
        HEALTH_TASK, _job_id=f"{HEALTH_TASK}:{connection_id}:{slot}", connection_id=connection_id
    )


def apply_job_id(connection_id: int, event_id: int | None = None) -> str:
    base = f"{APPLY_TASK}:{connection_id}"
    return base if event_id is None else f"{base}:{event_id}"


def enqueue_apply(connection_id: int, event_id: int | None = None) -> None:
    """Kick the connection's drain for a stored event (buffered: sent after the commit). The
    events of one transaction share one kick (the first event's): they are committed together,
    and one drain applies them all. A full sync's page storing hundreds of write-backs queued
    one kick each, and its own next steps gave way to them (`app/worker/priority.py`: more
    than `BULK_GIVE_WAY_DEPTH` interactive jobs due) for up to 2 s a step."""
    if event_id is not None and buffered(APPLY_TASK, f"{apply_job_id(connection_id)}:"):
        return
    enqueue_job(
        APPLY_TASK, _job_id=apply_job_id(connection_id, event_id), connection_id=connection_id
    )


def enqueue_release(connection_id: int) -> None:
    """Kick the drain for a held burst a user released (buffered: sent after the commit)."""
    enqueue_job(
        APPLY_TASK,
        _job_id=f"{apply_job_id(connection_id)}:release:{time.time_ns()}",
        connection_id=connection_id,
    )
