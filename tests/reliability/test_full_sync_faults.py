"""A full sync of a few hundred addresses on two real `connector worker` processes, against a
PostgreSQL and a Redis of this test, while a batch is being sent: the worker running it is
killed (`kill -9`), or Redis (without persistence) or PostgreSQL restarts. The run completes
within seconds (not after the 130 s job timeout or the 150 s staleness sweep), Mailchimp holds
exactly the newsletter contacts, the counts are exact, and no worker process exits.
The small version of `bench/chaos.py` (issue 22)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.reliability.conftest import (
    FAULT_ADDRESSES,
    Stack,
    ThrowawayPostgres,
    ThrowawayRedis,
    log_tail,
)

N = FAULT_ADDRESSES
# From the fault's end (the dependency back, the killed worker's last lease renewal) to the
# run's completion: the lease (6 s) or the quick resume (2 s idle, confirmed 3 s later, a
# sweep every 2 s) plus the rest of the run (a few seconds of emulated latency).
RECOVERY_S = 30.0


async def batch_in_flight(s: Stack, run_id: int, wait_s: float = 60) -> str:
    """Wait until a batch job of the run is running; its job id."""
    redis = Redis.from_url(s.redis_url)
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline:
            keys = [
                k async for k in redis.scan_iter(match=f"arq:in-progress:sync.upsert:{run_id}:*")
            ]
            if keys:
                return str(keys[0].decode())
            run = await s.run(run_id)
            assert run.get("status") != "completed", "the run ended before a batch was hit"
            await asyncio.sleep(0.02)
    finally:
        await redis.aclose()
    raise AssertionError("no batch job started")


async def completed_within(s: Stack, run_id: int, since: float) -> tuple[dict[str, Any], float]:
    while True:
        run = await s.run(run_id)
        elapsed = time.monotonic() - since
        if run.get("status") in ("completed", "failed", "cancelled"):
            return run, elapsed
        logs = "\n".join(log_tail(log, 25) for _p, log in s.workers)
        assert elapsed < RECOVERY_S, f"run not finished {elapsed:.0f} s later: {run}\n{logs}"
        await asyncio.sleep(0.2)


def assert_exact(s: Stack, run: dict[str, Any]) -> None:
    assert run["status"] == "completed", run
    members = s.world.mailchimp.lists[s.list_id].members
    assert sum(m.status == "subscribed" for m in members.values()) == N
    counts = run["counts"]
    assert counts["created"] == N and counts["synced"] == N, counts
    assert counts["updated"] == 0 and counts["rejected"] == 0, counts
    # Nothing written twice: a batch whose answer was lost with the fault was checked first.
    writes = s.world.mailchimp.batch_writes
    assert sum(writes.values()) == N, [e for e, n in writes.items() if n > 1][:10]


async def test_a_worker_killed_mid_batch_is_replaced_within_seconds(stack: Stack) -> None:
    """arq held the killed worker's job for its timeout + 10 s (130 s); the lease is 6 s."""
    first = stack.start_worker()
    run_id = await stack.start_sync()
    await batch_in_flight(stack, run_id)
    os.kill(first.pid, signal.SIGKILL)
    killed = time.monotonic()
    first.wait(timeout=10)
    stack.start_worker()  # what the supervisor does
    run, elapsed = await completed_within(stack, run_id, killed)
    assert_exact(stack, run)
    assert stack.exited(but=first) == []
    print(f"kill -9: completed {elapsed:.1f} s after the kill")


@pytest.mark.parametrize("fault", ["redis", "postgres"])
async def test_a_full_sync_completes_within_seconds_of_a_dependency_restart(
    stack: Stack,
    throwaway_redis: ThrowawayRedis,
    throwaway_postgres: ThrowawayPostgres,
    fault: str,
) -> None:
    stack.start_worker()
    stack.start_worker()
    run_id = await stack.start_sync()
    await batch_in_flight(stack, run_id)
    if fault == "redis":
        throwaway_redis.kill()  # no persistence: every queued job and flag is lost
        await asyncio.sleep(1.5)
        throwaway_redis.start()
    else:
        throwaway_postgres.stop()  # immediate: every connection is cut
        await asyncio.sleep(1.5)
        throwaway_postgres.start()
    back = time.monotonic()
    run, elapsed = await completed_within(stack, run_id, back)
    assert_exact(stack, run)
    assert stack.exited() == []
    print(f"{fault} restart: completed {elapsed:.1f} s after its return")
