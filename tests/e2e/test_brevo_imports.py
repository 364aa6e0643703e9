"""Brevo imports end to end: the notifyUrl path (Redis, worker processes) and the polling
fallback (embedded), against the Brevo emulator, which calls a given notifyUrl once the
import's processing delay has passed."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings
from emulators.onoffice_data import generate_address_book
from tests.e2e.conftest import World
from tests.e2e.harness import Tenant, connect_tenant, run_full_sync, start_connector


def _count(world: World, prefix: str) -> int:
    return sum(n for key, n in world.brevo.request_counts.items() if key.startswith(prefix))


async def _sync(
    world: World, http: httpx.AsyncClient, settings: Settings, *, workers: int, web_id: str
) -> tuple[int, int]:
    """One full sync of 2,000 addresses to Brevo: (imports, process reads)."""
    world.onoffice.seed(generate_address_book(2000, seed=5))
    connector = start_connector(settings, workers=workers)
    try:
        tenant = Tenant(web_id, "n" * 32, "m" * 64, f"claim-{web_id}")
        token, _ = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "brevo", "test-key-de"
        )
        run = await run_full_sync(http, connector, token)
        assert run["status"] == "completed", run
    finally:
        connector.stop()
    return _count(world, "POST /contacts/import"), _count(world, "GET /processes/")


@pytest.mark.usefixtures("redis")
async def test_a_notified_import_is_confirmed_with_one_read(
    world: World, e2e_settings: Settings, redis_url: str, http: httpx.AsyncClient
) -> None:
    world.brevo.config.import_delay = 0.5
    # A first poll an hour away: the sync can only finish in time through the notice.
    settings = e2e_settings.model_copy(
        update={"REDIS_URL": redis_url, "IMPORT_NOTIFY": "on", "BREVO_PROCESS_POLL_S": 3600.0}
    )
    imports, reads = await _sync(world, http, settings, workers=2, web_id="N1")
    assert imports >= 1
    assert reads == imports  # one confirmation per import


async def test_without_notices_the_import_is_polled(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> None:
    world.brevo.config.import_delay = 1.0
    settings = e2e_settings.model_copy(update={"IMPORT_NOTIFY": "off", "BREVO_PROCESS_POLL_S": 0.2})
    imports, reads = await _sync(world, http, settings, workers=0, web_id="N2")
    # Polled until done, backing off: more than one read per import, but few.
    assert imports < reads <= 5 * imports
