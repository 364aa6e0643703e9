"""A worker killed with SIGKILL mid-run: the run resumes on a new worker to the same result."""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.onoffice_data import generate_address_book
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Tenant,
    auth,
    connect_tenant,
    start_connector,
    wait_for_run,
)
from tests.e2e.test_full_sync import expected_outcome


@pytest.mark.usefixtures("redis")
class TestKilledWorker:
    async def test_run_resumes_without_resending_finished_batches(
        self, world: World, e2e_settings: Settings, redis_url: str, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed(generate_address_book(4000, seed=3))
        expected = expected_outcome([a.to_dict() for a in world.onoffice.addresses.values()])
        # Slow provider and onOffice, so the kill lands mid-run.
        world.mailchimp.latency_s = 0.05
        world.mailchimp.latency_per_item_s = 0.0005
        world.onoffice.latency = 0.3
        settings = e2e_settings.model_copy(
            update={"REDIS_URL": redis_url, "WORKER_JOB_TIMEOUT_S": 10}
        )
        connector = start_connector(settings, workers=1)
        try:
            tenant = Tenant("K1", "k" * 32, "l" * 64, "claim-k")
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            list_id = saved["list_id"]
            started = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run_id = started.json()["id"]

            # Kill the only worker once some batches finished but the run is far from done.
            deadline = time.monotonic() + 60
            while True:
                body = (
                    await http.get(f"{connector.url}/api/v1/syncs/{run_id}", headers=auth(token))
                ).json()
                if body["progress"]["batches_done"] >= 1:
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.05)
            assert body["status"] == "running"
            worker = connector.workers[0]
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            done_at_kill = body["progress"]["batches_done"]
            # Batches handed to jobs but not finished may have been in flight at the kill.
            in_flight_at_kill = body["progress"]["batches_total"] - done_at_kill
            # The live status shows the stalled run while no worker is alive.
            await asyncio.sleep(0.5)
            stalled = (
                await http.get(f"{connector.url}/api/v1/syncs/{run_id}", headers=auth(token))
            ).json()
            assert stalled["status"] == "running"

            world.mailchimp.latency_s = 0.0
            world.mailchimp.latency_per_item_s = 0.0
            world.onoffice.latency = 0.0
            connector.start_worker()
            run = await wait_for_run(http, connector.url, token, run_id, wait_s=120)
            assert run["status"] == "completed", run
            counts = run["counts"]
            assert counts["reconciled"] is True
            assert counts["onoffice_newsletter_total"] == expected["total"]
            assert counts["synced"] == len(expected["owners"])
            problems = counts["duplicates"] + counts["invalid_emails"] + counts["opted_out"]
            assert problems == len(expected["problems"])
            members = world.mailchimp.lists[list_id].members.values()
            assert {m.email for m in members if m.status == "subscribed"} == set(expected["owners"])
            # Finished batches were not sent again: only those in flight may be repeated.
            batch_calls = world.mailchimp.request_counts["POST /3.0/lists/{list_id}"]
            assert done_at_kill >= 1
            total = run["progress"]["batches_total"]
            assert total <= batch_calls <= total + in_flight_at_kill, world.mailchimp.request_counts
        finally:
            connector.stop()
