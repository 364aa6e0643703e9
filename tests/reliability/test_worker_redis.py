"""A real `connector worker` process against a Redis of this test that is killed and started
again (losing every key, as Redis without persistence does): the process stays alive and serves
jobs enqueued after Redis's return within seconds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import Connector, Tenant, connect_tenant, run_full_sync, start_connector
from tests.e2e.test_webhooks import address, at_mailchimp, mailchimp_form, newsletter
from tests.reliability.conftest import (
    ThrowawayRedis,
    log_tail,
    start_worker_process,
    stop_process,
)

# How soon after Redis's return a job enqueued then must have run.
RECOVERY_S = 10.0


@dataclass
class Running:
    connector: Connector
    worker: subprocess.Popen[bytes]
    log: Path
    hook_url: str
    list_id: str


@pytest.fixture
async def running(
    world: World,
    e2e_settings: Settings,
    http: httpx.AsyncClient,
    throwaway_redis: ThrowawayRedis,
    tmp_path: Path,
) -> AsyncIterator[Running]:
    """API (in this process) and one worker process (both queues) on the throwaway Redis, a
    connected Mailchimp tenant whose first full sync ran on that worker."""
    world.onoffice.seed(
        [address(1, "anna@example.de"), address(2, "bob@example.de"), address(3, "carl@example.de")]
    )
    settings = e2e_settings.model_copy(update={"REDIS_URL": throwaway_redis.url})
    connector = start_connector(settings)
    log = tmp_path / "worker.log"
    worker = start_worker_process(connector.env, log)
    try:
        tenant = Tenant("R1", "r" * 32, "s" * 64, "claim-r")
        token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
        )
        run = await run_full_sync(http, connector, token)
        assert run["status"] == "completed", run
        list_id = saved["list_id"]
        (hook,) = world.mailchimp.lists[list_id].webhooks.values()
        yield Running(connector, worker, log, hook["url"], list_id)
    finally:
        stop_process(worker)
        connector.stop()


async def unsubscribe_applied_within(
    world: World, http: httpx.AsyncClient, running: Running, address_id: int, email: str
) -> float:
    """Mailchimp reports an unsubscribe; seconds until onOffice shows it (or the test fails)."""
    at_mailchimp(world, running.list_id, email, "unsubscribe")
    form = mailchimp_form(
        "unsubscribe", email, action="unsub", reason="manual", list_id=running.list_id
    )
    started = time.monotonic()
    response = await http.post(running.hook_url, data=form)
    assert response.status_code == 200 and response.json()["stored"] == 1, response.text
    while newsletter(world, address_id) != "0":
        elapsed = time.monotonic() - started
        assert running.worker.poll() is None, f"the worker exited:\n{log_tail(running.log)}"
        assert elapsed < RECOVERY_S, f"not applied after {elapsed:.1f} s:\n{log_tail(running.log)}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def test_worker_outlives_a_redis_restart_and_serves_jobs_again(
    world: World, http: httpx.AsyncClient, running: Running, throwaway_redis: ThrowawayRedis
) -> None:
    # Before: a job kicked by a webhook runs on the worker.
    await unsubscribe_applied_within(world, http, running, 1, "anna@example.de")

    throwaway_redis.kill()
    await asyncio.sleep(2.0)  # the worker polls a Redis that is gone (every 0.05 s)
    assert running.worker.poll() is None, f"the worker exited:\n{log_tail(running.log)}"
    throwaway_redis.start()  # empty: the queue and every flag are lost
    await asyncio.sleep(1.0)
    assert running.worker.poll() is None, f"the worker exited:\n{log_tail(running.log)}"

    # After: a job enqueued after Redis's return runs within seconds.
    await unsubscribe_applied_within(world, http, running, 2, "bob@example.de")
    # And again, after a second outage (the worker's recovery is not a one-off).
    throwaway_redis.kill()
    await asyncio.sleep(1.0)
    throwaway_redis.start()
    await unsubscribe_applied_within(world, http, running, 3, "carl@example.de")
    assert running.worker.poll() is None
    assert "worker.redis_unavailable" in running.log.read_text(errors="replace")
    # The container health check sees a healthy worker again (its health was recorded anew).
    # (Recorded at the worker's next poll: allow a few seconds on a busy machine.)
    deadline = time.monotonic() + 10
    while True:
        check = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app.cli", "worker", "--check", env=running.connector.env
        )
        if await check.wait() == 0:
            break
        assert time.monotonic() < deadline, "the worker's health was not recorded again"
        await asyncio.sleep(0.5)


async def test_an_unsubscribe_received_while_redis_is_down_is_applied_soon_after_its_return(
    world: World, http: httpx.AsyncClient, running: Running, throwaway_redis: ThrowawayRedis
) -> None:
    """Ingest stores the event (the database is up) but cannot kick its drain; once Redis is
    back the worker runs the sweeps at once instead of at the next full minute."""
    # Redis returns by second 48 of a minute: the minute's sweep is more than RECOVERY_S away.
    second = time.time() % 60
    if not 1 <= second <= 45:
        await asyncio.sleep((61 - second) % 60)
    throwaway_redis.kill()
    at_mailchimp(world, running.list_id, "bob@example.de", "unsubscribe")
    form = mailchimp_form(
        "unsubscribe", "bob@example.de", action="unsub", reason="manual", list_id=running.list_id
    )
    response = await http.post(running.hook_url, data=form)
    assert response.status_code == 200 and response.json()["stored"] == 1, response.text
    await asyncio.sleep(1.0)
    throwaway_redis.start()
    back = time.monotonic()
    while newsletter(world, 2) != "0":
        elapsed = time.monotonic() - back
        assert running.worker.poll() is None, f"the worker exited:\n{log_tail(running.log)}"
        assert elapsed < RECOVERY_S, f"not applied after {elapsed:.1f} s:\n{log_tail(running.log)}"
        await asyncio.sleep(0.1)
