"""The webhook domain's jobs: task names, deterministic job ids and typed enqueue functions
(callers never spell a task name).

Every drain job is `webhooks.apply`: a kick (`owner=None`, claims the connection's drain flag
first, a no-op while another drain owns it) or a hand-over to the owner's next step.
"""

from __future__ import annotations

import time
from typing import Any

from app.worker.queue import PendingJob, enqueue_job

APPLY_TASK = "webhooks.apply"
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
    """Kick the connection's drain for a stored event (buffered: sent after the commit)."""
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


def drain_job(
    connection_id: int,
    token: str,
    *,
    step: int = 0,
    defer_s: float = 0.0,
    listing: dict[str, Any] | None = None,
) -> PendingJob:
    """The job that drains as owner `token` (a hand-over keeps the token, a new step, and
    `listing`: where the provider listing of the confirmation reads stands)."""
    extra = {"listing": listing} if listing else {}
    return PendingJob(
        APPLY_TASK,
        {"connection_id": connection_id, "owner": token, "step": step, **extra},
        job_id=f"{APPLY_TASK}:{connection_id}:{token}:{step}",
        defer_by=defer_s or None,
    )


def later_job(connection_id: int, defer_s: float) -> PendingJob:
    """A kick after `defer_s`: for events left pending on purpose (a backoff, a burst window)."""
    return PendingJob(
        APPLY_TASK,
        {"connection_id": connection_id, "owner": None},
        job_id=f"{APPLY_TASK}:{connection_id}:later:{int(time.time())}",
        defer_by=defer_s,
    )
