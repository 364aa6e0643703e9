"""A real `connector worker` process (and the API) against a PostgreSQL of this test that is
stopped (immediate: every connection cut) and started again: the drain job that fails meanwhile
is retried within seconds and gives its ownership up, so the event is applied within seconds
of the database's return; no process exits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx
import pytest

from app.config import Settings
from app.inbox import owner
from app.resources import Resources, create_resources
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import Connector, Tenant, connect_tenant, run_full_sync, start_connector
from tests.e2e.test_webhook_drain import form, store
from tests.e2e.test_webhooks import Hooked, address, at_mailchimp, mailchimp_form, newsletter
from tests.reliability.conftest import (
    ThrowawayPostgres,
    ThrowawayRedis,
    log_tail,
    start_worker_process,
    stop_process,
)

RECOVERY_S = 10.0


@dataclass
class Running:
    connector: Connector
    worker: Popen[bytes]
    log: Path
    hooked: Hooked
    resources: Resources


@pytest.fixture
async def running(
    world: World,
    e2e_settings: Settings,
    http: httpx.AsyncClient,
    pg_database: str,
    throwaway_redis: ThrowawayRedis,
    tmp_path: Path,
) -> AsyncIterator[Running]:
    world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
    settings = e2e_settings.model_copy(
        update={"DATABASE_URL": pg_database, "REDIS_URL": throwaway_redis.url}
    )
    connector = start_connector(settings)
    log = tmp_path / "worker.log"
    worker = start_worker_process(connector.env, log)
    resources = await create_resources(connector.settings)
    try:
        tenant = Tenant("P1", "p" * 32, "q" * 64, "claim-p")
        token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
        )
        run = await run_full_sync(http, connector, token)
        assert run["status"] == "completed", run
        (hook,) = world.mailchimp.lists[saved["list_id"]].webhooks.values()
        hooked = Hooked(connector, token, hook["url"], saved["list_id"])
        yield Running(connector, worker, log, hooked, resources)
    finally:
        await resources.aclose()
        stop_process(worker)
        connector.stop()


async def test_a_drain_failing_on_a_postgresql_restart_resumes_within_seconds(
    world: World,
    http: httpx.AsyncClient,
    running: Running,
    throwaway_postgres: ThrowawayPostgres,
) -> None:
    hooked = running.hooked
    # Stored as ingest stores it, its drain not kicked yet.
    at_mailchimp(world, hooked.list_id, "anna@example.de", "unsubscribe")
    unsubscribe = form("unsubscribe", "anna@example.de", hooked.list_id)
    cid = await store(running.resources, hooked, [unsubscribe])
    assert cid > 0
    # The database returns by second 48 of a minute: the minute's sweep is more than
    # RECOVERY_S away, so only the job's own retry can apply the event in time.
    second = time.time() % 60
    if not 1 <= second <= 40:
        await asyncio.sleep((61 - second) % 60)
    throwaway_postgres.stop()
    assert await owner.kick(running.resources, cid)  # the drain job runs and fails
    await asyncio.sleep(3.0)
    assert running.worker.poll() is None, f"the worker exited:\n{log_tail(running.log)}"
    throwaway_postgres.start()
    back = time.monotonic()
    while newsletter(world, 1) != "0":
        elapsed = time.monotonic() - back
        assert running.worker.poll() is None, f"the worker exited:\n{log_tail(running.log)}"
        assert elapsed < RECOVERY_S, f"not applied after {elapsed:.1f} s:\n{log_tail(running.log)}"
        await asyncio.sleep(0.1)

    # The API serves again, too: an unsubscribe delivered now is stored and applied.
    at_mailchimp(world, hooked.list_id, "bob@example.de", "unsubscribe")
    delivery = mailchimp_form(
        "unsubscribe", "bob@example.de", action="unsub", reason="manual", list_id=hooked.list_id
    )
    response = await http.post(hooked.hook_url, data=delivery)
    assert response.status_code == 200 and response.json()["stored"] == 1, response.text
    deadline = time.monotonic() + RECOVERY_S
    while newsletter(world, 2) != "0":
        assert time.monotonic() < deadline, f"not applied:\n{log_tail(running.log)}"
        await asyncio.sleep(0.1)
    assert running.worker.poll() is None
