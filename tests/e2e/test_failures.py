"""Outages during a sync end the run with a message a user can act on, and lose nothing."""

from __future__ import annotations

import httpx

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY, Fault
from emulators.onoffice import Fault as OnOfficeFault
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


async def connected(
    http: httpx.AsyncClient, world: World, settings: Settings, web_id: str
) -> tuple[object, str]:
    connector = start_connector(settings)
    tenant = Tenant(web_id, "o" * 32, "p" * 64, "claim-o")
    token, _saved = await connect_tenant(
        http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
    )
    return connector, token


class TestOutages:
    async def test_onoffice_outage_fails_the_run_with_its_status_page(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed(generate_address_book(200, seed=1))
        settings = e2e_settings.model_copy(update={"WORKER_MAX_TRIES": 2})
        connector, token = await connected(http, world, settings, "O1")
        try:
            world.onoffice.faults.append(OnOfficeFault("http", 1000, status=503))
            started = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run = await wait_for_run(http, connector.url, token, started.json()["id"])  # type: ignore[attr-defined]
            assert run["status"] == "failed"
            assert "status.onoffice.de" in run["error"]
            assert run["progress"]["phase"] == "failed"
            # A failed run does not block the next one, which succeeds once onOffice is back.
            world.onoffice.faults.clear()
            again = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            assert again.status_code == 202
            run2 = await wait_for_run(http, connector.url, token, again.json()["id"])  # type: ignore[attr-defined]
            assert run2["status"] == "completed", run2
        finally:
            connector.stop()  # type: ignore[attr-defined]

    async def test_provider_outage_fails_the_run_and_the_next_run_sends_everything(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed(generate_address_book(300, seed=2))
        expected = expected_outcome([a.to_dict() for a in world.onoffice.addresses.values()])
        settings = e2e_settings.model_copy(update={"WORKER_MAX_TRIES": 2})
        connector, token = await connected(http, world, settings, "O2")
        try:
            world.mailchimp.faults.append(Fault(status=503, count=10_000))
            started = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run = await wait_for_run(http, connector.url, token, started.json()["id"])  # type: ignore[attr-defined]
            assert run["status"] == "failed"
            assert "status.mailchimp.com" in run["error"]
            world.mailchimp.faults.clear()
            again = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run2 = await wait_for_run(http, connector.url, token, again.json()["id"])  # type: ignore[attr-defined]
            assert run2["status"] == "completed", run2
            # Nothing was recorded as synced by the failed run, so everything is sent now.
            assert run2["counts"]["synced"] == len(expected["owners"])
            assert run2["counts"]["unchanged"] == 0
        finally:
            connector.stop()  # type: ignore[attr-defined]
