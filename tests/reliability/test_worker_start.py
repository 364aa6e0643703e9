"""A worker started while Redis is still down (a host booting, Redis restarting) waits for it
instead of exiting, serves once it is up, and stops cleanly when asked to while Redis is down."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from app.config import Settings
from tests.e2e.harness import connector_env
from tests.reliability.conftest import (
    ThrowawayRedis,
    log_tail,
    start_worker_process,
    stop_process,
)


async def worker_check(env: dict[str, str]) -> int:
    check = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", "worker", "--check", env=env
    )
    return await check.wait()


async def test_a_worker_started_before_redis_waits_for_it(
    settings: Settings, tmp_path: Path
) -> None:
    redis = ThrowawayRedis()  # not started yet
    env = connector_env(settings.model_copy(update={"REDIS_URL": redis.url}))
    log = tmp_path / "worker.log"
    worker = start_worker_process(env, log)
    try:
        # arq alone gives up after its connection attempts: the process exited after about 10 s.
        await asyncio.sleep(12.0)
        assert worker.poll() is None, f"the worker exited:\n{log_tail(log)}"
        assert await worker_check(env) == 1  # unhealthy while Redis is down
        redis.start()
        deadline = time.monotonic() + 10.0
        while await worker_check(env) != 0:
            assert worker.poll() is None, f"the worker exited:\n{log_tail(log)}"
            assert time.monotonic() < deadline, f"not serving:\n{log_tail(log)}"
            await asyncio.sleep(0.5)
        # Asked to stop while Redis is down, it stops cleanly (arq's shutdown raised again).
        redis.kill()
        await asyncio.sleep(1.0)
        worker.terminate()
        deadline = time.monotonic() + 10.0
        while worker.poll() is None:
            assert time.monotonic() < deadline, f"did not stop:\n{log_tail(log)}"
            await asyncio.sleep(0.1)
        assert worker.returncode == 0, log_tail(log)
    finally:
        stop_process(worker)
        redis.close()
