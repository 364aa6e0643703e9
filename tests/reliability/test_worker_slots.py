"""A job that cannot be started because Redis went away between taking a job slot and reading
the job gives its slot back (arq keeps it: after `max_jobs` such failures a worker would never
start a job again, alive but idle)."""

from __future__ import annotations

from typing import Any

import pytest
import redis.exceptions
from arq.connections import RedisSettings, create_pool
from arq.worker import func

from app.worker.resilient import ResilientWorker
from tests.reliability.conftest import ThrowawayRedis


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def test_a_job_that_cannot_be_started_gives_its_slot_back(
    throwaway_redis: ThrowawayRedis,
) -> None:
    pool = await create_pool(RedisSettings.from_dsn(throwaway_redis.url))
    worker = ResilientWorker(
        functions=[func(noop, name="noop")],
        redis_pool=pool,
        queue_name="reliab:queue",
        handle_signals=False,
        max_jobs=2,
    )
    try:
        throwaway_redis.kill()
        for _ in range(2):
            with pytest.raises(redis.exceptions.ConnectionError):
                await worker.start_jobs([b"job-1"])
        assert worker.job_counter == 0
        # Redis back: the worker starts a job (it has a free slot).
        throwaway_redis.start()
        job = await pool.enqueue_job("noop", _job_id="job-1", _queue_name="reliab:queue")
        assert job is not None
        await worker.start_jobs([b"job-1"])
        assert "job-1" in worker.tasks
        await worker.tasks["job-1"]
    finally:
        worker._pool = None  # closed here, not by the worker
        await pool.aclose()
