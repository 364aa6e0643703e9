"""The inbox's streams and the shape of their drain jobs: one task per stream, which the
stream's consumer registers (`webhooks.apply`, `incremental.drain`), called with the connection
and either no owner (a kick: claims the connection's flag first, a no-op while another drain
owns it) or the owner's token (a hand-over to the owner's next step)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any

from app.worker.queue import PendingJob

# The source of onOffice's "address saved" events; every other source is a provider's.
ONOFFICE_SOURCE = "onoffice"


class Stream(StrEnum):
    """Which of a connection's events a drain takes (the value names its flag)."""

    provider = "webhooks"  # provider events, applied to onOffice (app/webhooks/)
    onoffice = "onoffice"  # "address saved" events, pushed to the provider (app/incremental/)


DRAIN_TASKS = {Stream.provider: "webhooks.apply", Stream.onoffice: "incremental.drain"}


def drain_job(
    connection_id: int,
    token: str,
    *,
    step: int = 0,
    defer_s: float = 0.0,
    listing: dict[str, Any] | None = None,
    stream: Stream = Stream.provider,
) -> PendingJob:
    """The job that drains as owner `token` (a hand-over keeps the token, a new step, and
    `listing`: where the provider listing of the confirmation reads stands)."""
    task = DRAIN_TASKS[stream]
    extra = {"listing": listing} if listing else {}
    return PendingJob(
        task,
        {"connection_id": connection_id, "owner": token, "step": step, **extra},
        job_id=f"{task}:{connection_id}:{token}:{step}",
        defer_by=defer_s or None,
    )


def later_job(
    connection_id: int, defer_s: float, *, stream: Stream = Stream.provider
) -> PendingJob:
    """A kick after `defer_s`: for events left pending on purpose (a backoff, a burst window)."""
    task = DRAIN_TASKS[stream]
    return PendingJob(
        task,
        {"connection_id": connection_id, "owner": None},
        job_id=f"{task}:{connection_id}:later:{int(time.time())}",
        defer_by=defer_s,
    )
