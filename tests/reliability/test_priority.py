"""Interactive work first: a full-sync step waits while interactive jobs are due (real Redis,
the arq queue as the workers read it), never longer than BULK_GIVE_WAY_S, and not at all for
deferred jobs, a quiet queue or the embedded mode."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.config import Settings
from app.resources import Resources, create_resources
from app.worker.priority import give_way
from app.worker.queue import QUEUE_NAMES, Queue


@pytest.fixture
async def busy(settings: Settings, redis: Any, redis_url: str) -> AsyncIterator[Resources]:
    update = {"REDIS_URL": redis_url, "BULK_GIVE_WAY_DEPTH": 3, "BULK_GIVE_WAY_S": 0.6}
    res = await create_resources(settings.model_copy(update=update))
    yield res
    await res.aclose()


async def due_jobs(redis: Any, count: int, *, defer_s: float | None = None) -> list[str]:
    ids = [f"job-{time.monotonic_ns()}-{i}" for i in range(count)]
    for job_id in ids:
        job = await redis.enqueue_job(
            "webhooks.apply",
            _job_id=job_id,
            _defer_by=defer_s,
            _queue_name=QUEUE_NAMES[Queue.interactive],
        )
        assert job is not None
    return ids


async def test_a_quiet_queue_costs_no_wait(busy: Resources, redis: Any) -> None:
    await due_jobs(redis, 3)  # as many as BULK_GIVE_WAY_DEPTH: not busy
    assert await give_way(busy) == 0.0


async def test_a_busy_queue_holds_the_step_at_most_the_cap(busy: Resources, redis: Any) -> None:
    await due_jobs(redis, 4)
    waited = await give_way(busy)
    assert 0.5 <= waited <= 1.0


async def test_deferred_jobs_are_not_waited_for(busy: Resources, redis: Any) -> None:
    await due_jobs(redis, 10, defer_s=60)  # retries later, not due now
    assert await give_way(busy) == 0.0


async def test_the_step_goes_on_as_soon_as_the_queue_drains(busy: Resources, redis: Any) -> None:
    ids = await due_jobs(redis, 5)

    async def workers_take_two() -> None:
        await asyncio.sleep(0.25)
        await redis.zrem(QUEUE_NAMES[Queue.interactive], *ids[:2])  # finished jobs leave

    started = time.monotonic()
    waited, _ = await asyncio.gather(give_way(busy), workers_take_two())
    assert 0.2 <= waited < 0.5
    assert time.monotonic() - started < 0.55


async def test_the_bulk_queue_and_the_embedded_mode_never_wait(
    busy: Resources, redis: Any, resources: Resources
) -> None:
    for i in range(10):
        await redis.enqueue_job(
            "sync.upsert_batch", _job_id=f"bulk-{i}", _queue_name=QUEUE_NAMES[Queue.bulk]
        )
    assert await give_way(busy) == 0.0
    assert resources.redis is None
    assert await give_way(resources) == 0.0
