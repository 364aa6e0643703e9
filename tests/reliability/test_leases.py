"""Job leases and the quick resume (issue 22, recovery in seconds): a running job's lease is
renewed while it runs (so no other worker starts it) and expires soon after its worker died
(arq's in-progress key lived for the job timeout + 10 s); a worker whose lease another worker
took gives way; `sync.resume` tells a run whose jobs Redis lost from one whose jobs are queued
or running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix
from arq.worker import func

from app.syncs.liveness import MARKER, IdleRuns, busy_runs, run_of
from app.worker.queue import BULK, QUEUE_NAMES
from app.worker.resilient import LEASE_HOLDER_PREFIX, ResilientWorker
from tests.reliability.conftest import ThrowawayRedis

QUEUE = "leases:queue"
LEASE_S = 1.0


@pytest.fixture
async def pool(throwaway_redis: ThrowawayRedis) -> AsyncIterator[ArqRedis]:
    redis = await create_pool(RedisSettings.from_dsn(throwaway_redis.url))
    yield redis
    await redis.aclose()


def worker(pool: ArqRedis, job: Any) -> ResilientWorker:
    return ResilientWorker(
        functions=[func(job, name="job")],
        redis_pool=pool,
        queue_name=QUEUE,
        handle_signals=False,
        poll_delay=0.05,
        job_lease_s=LEASE_S,
    )


async def stop(w: ResilientWorker, runner: asyncio.Future[None]) -> None:
    """As `supervise()` stops a worker: close it (its jobs are cancelled), then its loop."""
    pool = w._pool
    w._pool = None  # the test's pool stays open
    w.handle_sig(15)
    await asyncio.gather(*w.tasks.values(), return_exceptions=True)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert pool is not None


async def running(pool: ArqRedis, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while not await pool.exists(in_progress_key_prefix + job_id):
        assert time.monotonic() < deadline, "the job did not start"
        await asyncio.sleep(0.02)


async def test_a_running_jobs_lease_is_short_and_renewed_while_it_runs(
    pool: ArqRedis,
) -> None:
    async def job(ctx: dict[str, Any]) -> None:
        await asyncio.sleep(3 * LEASE_S)

    w = worker(pool, job)
    runner = asyncio.ensure_future(w.async_run())
    try:
        await pool.enqueue_job("job", _job_id="j1", _queue_name=QUEUE)
        await running(pool, "j1")
        await asyncio.sleep(2 * LEASE_S)  # twice the lease: only renewals keep it
        assert await pool.exists(in_progress_key_prefix + "j1")
        ttl_ms = await pool.pttl(in_progress_key_prefix + "j1")
        assert 0 < ttl_ms <= LEASE_S * 1000
    finally:
        await stop(w, runner)
    # Stopped mid-job, the worker leaves the job queued for another one.
    assert await pool.zscore(QUEUE, "j1") is not None


async def test_a_worker_whose_lease_another_worker_took_gives_way(pool: ArqRedis) -> None:
    outcome: list[str] = []

    async def job(ctx: dict[str, Any]) -> None:
        try:
            await asyncio.sleep(10)
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    w = worker(pool, job)
    runner = asyncio.ensure_future(w.async_run())
    try:
        await pool.enqueue_job("job", _job_id="j2", _queue_name=QUEUE)
        await running(pool, "j2")
        # This worker's loop was blocked past its lease; another worker started the job.
        await pool.set(LEASE_HOLDER_PREFIX + "j2", b"other-worker", px=5000)
        deadline = time.monotonic() + 3 * LEASE_S
        while not outcome:
            assert time.monotonic() < deadline, "the job kept running"
            await asyncio.sleep(0.05)
        assert outcome == ["cancelled"]
        # The other worker's keys are left alone: the job is still queued and leased.
        await asyncio.sleep(0.2)
        assert await pool.get(LEASE_HOLDER_PREFIX + "j2") == b"other-worker"
        assert await pool.zscore(QUEUE, "j2") is not None
    finally:
        await stop(w, runner)


def test_the_run_of_a_job_id() -> None:
    assert run_of("sync.upsert:12:3") == 12
    assert run_of("sync.read:7:0:p1000") == 7
    assert run_of("sync.finalize:5") == 5
    assert run_of("sync.finalize:5:stale:123") == 5
    assert run_of("cron:sync.resume:1700000000") is None
    assert run_of("webhooks.drain:5") is None


async def test_a_run_without_jobs_is_resumed_only_when_seen_idle_twice(pool: ArqRedis) -> None:
    await pool.zadd(QUEUE_NAMES[BULK], {"sync.upsert:1:4": 1})  # queued
    await pool.set(in_progress_key_prefix + "sync.read:2:500", b"1")  # running
    assert await busy_runs(pool) == {1, 2}
    idle = await IdleRuns.load(pool)
    for run in (1, 2):
        assert not await idle.lost_its_jobs(run, idle_s=60)
    # Run 3 has no job: not at the first sighting, nor when it just made progress.
    assert not await idle.lost_its_jobs(3, idle_s=60)
    assert not await idle.lost_its_jobs(3, idle_s=0.5)  # progress: the sighting is forgotten
    assert not await idle.lost_its_jobs(3, idle_s=60)
    assert not await idle.lost_its_jobs(3, idle_s=60)  # seen again too soon
    # Seen idle again more than IDLE_CONFIRM_S after the first sighting: resumed, once.
    await pool.set(f"{MARKER}3", repr(time.time() - 10))
    assert await idle.lost_its_jobs(3, idle_s=60)
    assert not await idle.lost_its_jobs(3, idle_s=60)
