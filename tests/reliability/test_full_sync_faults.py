"""A full sync of a few hundred addresses on two real `connector worker` processes, against a
PostgreSQL and a Redis of this test, while a batch is being sent: the worker running it is
killed (`kill -9`), or Redis (without persistence) or PostgreSQL restarts. The run completes
within seconds (not after the 130 s job timeout or the 150 s staleness sweep), Mailchimp holds
exactly the newsletter contacts, the counts are exact, and no worker process exits.
The small version of `bench/chaos.py` (issue 22)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import Connector, Tenant, auth, connect_tenant, start_connector
from tests.e2e.test_webhooks import address
from tests.reliability.conftest import (
    ThrowawayPostgres,
    ThrowawayRedis,
    log_tail,
    start_worker_process,
    stop_process,
)
from tests.reliability.test_worker_postgres import pg_database  # noqa: F401  (fixture)

N = 300
# From the fault's end (the dependency back, the killed worker's last lease renewal) to the
# run's completion: the lease (8 s) or the quick resume (2 s idle, confirmed 3 s later, a
# sweep every 2 s) plus the rest of the run (a few seconds of emulated latency).
RECOVERY_S = 30.0


@dataclass
class Stack:
    world: World
    http: httpx.AsyncClient
    connector: Connector
    redis_url: str
    tmp: Path
    token: str = ""
    list_id: str = ""
    workers: list[tuple[Popen[bytes], Path]] = field(default_factory=list)

    def start_worker(self) -> Popen[bytes]:
        log = self.tmp / f"worker{len(self.workers) + 1}.log"
        proc = start_worker_process(self.connector.env, log)
        self.workers.append((proc, log))
        return proc

    def exited(self, but: Popen[bytes] | None = None) -> list[str]:
        return [
            f"{log.name} (rc {p.returncode}):\n{log_tail(log)}"
            for p, log in self.workers
            if p is not but and p.poll() is not None
        ]

    async def start_sync(self) -> int:
        started = await self.http.post(
            f"{self.connector.url}/api/v1/syncs", headers=auth(self.token)
        )
        assert started.status_code == 202, started.text
        return int(started.json()["id"])

    async def run(self, run_id: int) -> dict[str, Any]:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await self.http.get(
                f"{self.connector.url}/api/v1/syncs/{run_id}", headers=auth(self.token), timeout=5
            )
            if response.status_code == 200:
                return dict(response.json())
        return {}


@pytest.fixture
async def stack(
    world: World,
    e2e_settings: Settings,
    http: httpx.AsyncClient,
    pg_database: str,  # noqa: F811
    throwaway_redis: ThrowawayRedis,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, N + 1)])
    settings = e2e_settings.model_copy(
        update={
            "DATABASE_URL": pg_database,
            "REDIS_URL": throwaway_redis.url,
            "SYNC_BATCH_SIZE": 50,
            "ONOFFICE_PAGE_SIZE": 50,
            "LOG_LEVEL": "INFO",
        }
    )
    connector = start_connector(settings)
    s = Stack(world, http, connector, throwaway_redis.url, tmp_path)
    try:
        tenant = Tenant("F1", "f" * 32, "g" * 64, "claim-f")
        s.token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
        )
        s.list_id = saved["list_id"]
        # Every Mailchimp request takes a while: a batch is in flight long enough to hit.
        world.mailchimp.latency_s = 0.3
        yield s
    finally:
        for proc, _log in s.workers:
            stop_process(proc)
        connector.stop()


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
    """arq held the killed worker's job for its timeout + 10 s (130 s); the lease is 8 s."""
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
