"""Issue 21: when onOffice refuses the customer's API user (the provider locked or the
subscription cancelled in the Marketplace, the API user gone), the connection stops its
onOffice jobs, says so in the status in German and English, keeps the provider's events
(without counting tries), and resumes by itself once onOffice accepts the access again.

onOffice documents neither which code a lock gives nor where: each reading is tested, a
top-level error (customer inactive, 42; token unknown, 22) and an in-band error of every
action (user inactive, 104)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.incremental import poll
from app.webhooks import drain
from emulators.onoffice.state import Fault
from tests.security.conftest import (
    BREVO_KEYS,
    World,
    bearer,
    fetch_all,
    open_world,
    tenant,
)
from tests.security.test_webhook_intake import brevo_event, post_brevo


@contextlib.asynccontextmanager
async def access_world(settings: Settings, **overrides: Any) -> AsyncIterator[tuple[World, Any]]:
    """The security tests' world, with the app's resources (to wait for in-process jobs)."""
    async with open_world(settings, **overrides) as world:
        yield world, world.resources


def lock_top_level_inactive(world: World) -> Callable[[], None]:
    customer = world.onoffice.customers[tenant(1).api_token]
    customer.active = False  # {"status": {"code": 400, "errorcode": 42}}

    def unlock() -> None:
        customer.active = True

    return unlock


def lock_token_unknown(world: World) -> Callable[[], None]:
    token = tenant(1).api_token
    customer = world.onoffice.customers.pop(token)  # top-level 22 "Not authenticated"

    def unlock() -> None:
        world.onoffice.customers[token] = customer

    return unlock


def lock_in_band_user_inactive(world: World) -> Callable[[], None]:
    # Every action answered with its own errorcode 104 (top level 200 / 97).
    world.onoffice.faults.append(Fault("inband", 10_000, errorcode=104, message="User inactive"))

    def unlock() -> None:
        world.onoffice.faults.clear()

    return unlock


READINGS = {
    "top_level_42": lock_top_level_inactive,
    "top_level_22": lock_token_unknown,
    "in_band_104": lock_in_band_user_inactive,
}


async def status_of(world: World, token: str, lang: str) -> dict[str, Any]:
    response = await world.client.get(
        "/api/v1/status", headers={**bearer(token), "Accept-Language": lang}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refused_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await fetch_all(engine, "SELECT * FROM onoffice_access")


@pytest.mark.parametrize("reading", sorted(READINGS))
async def test_a_refused_access_stops_the_jobs_shows_it_and_resumes(
    settings: Settings, engine: AsyncEngine, reading: str
) -> None:
    async with access_world(settings, INBOUND_EVENT_MAX_ATTEMPTS=2) as (world, resources):
        token, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        queue = resources.queue
        await queue.join()
        ok = await status_of(world, token, "en")
        assert ok["onoffice_access"]["state"] == "ok"
        unlock = READINGS[reading](world)

        # A full sync meets the refusal: the run fails saying why, the connection is marked.
        started = await world.client.post("/api/v1/syncs", headers=bearer(token))
        assert started.status_code == 202, started.text
        await queue.join()
        run = (
            await world.client.get(f"/api/v1/syncs/{started.json()['id']}", headers=bearer(token))
        ).json()
        assert run["status"] == "failed"
        assert "Marketplace" in run["error"]
        (row,) = await refused_rows(engine)
        assert row["errorcode"] in (22, 42, 104)

        # The status says so in both languages.
        de = (await status_of(world, token, "de"))["onoffice_access"]
        en = (await status_of(world, token, "en"))["onoffice_access"]
        assert de["state"] == en["state"] == "refused"
        assert "verweigert den Zugriff" in de["text"] and "Marketplace" in de["text"]
        assert "refused access" in en["text"] and "resumes by itself" in en["text"]
        assert de["errorcode"] == row["errorcode"]

        # No new full sync, no poll before the re-check is due.
        again = await world.client.post(
            "/api/v1/syncs", headers={**bearer(token), "Accept-Language": "en"}
        )
        assert again.status_code == 409 and "refuses" in again.json()["message"]
        assert await poll.schedule(resources) == 0

        # Provider events are received and kept: no try counted, none given up.
        delivered = await post_brevo(world, path, secret, brevo_event("kept@example.de"))
        assert delivered.status_code == 200
        await queue.join()
        (connection,) = await fetch_all(engine, "SELECT id FROM connection")
        for _ in range(3):
            await drain.run_drain(resources, int(connection["id"]), None)
        events = await fetch_all(engine, "SELECT status, attempts FROM inbound_event")
        assert [(e["status"], e["attempts"]) for e in events] == [("pending", 0)]
        calls_while_refused = sum(world.onoffice.request_counts.values())
        await queue.join()
        assert sum(world.onoffice.request_counts.values()) == calls_while_refused

        # onOffice accepts again: a user's "check now" finds it and everything resumes.
        unlock()
        checked = await world.client.post("/api/v1/changes/poll", headers=bearer(token))
        assert checked.status_code == 202
        await queue.join()
        assert await refused_rows(engine) == []
        assert (await status_of(world, token, "de"))["onoffice_access"]["state"] == "ok"
        events = await fetch_all(engine, "SELECT status, attempts FROM inbound_event")
        assert [e["status"] for e in events] != ["pending"], events  # the drain ran again
        resumed = await world.client.post("/api/v1/syncs", headers=bearer(token))
        assert resumed.status_code == 202, resumed.text
        await queue.join()


async def test_the_scheduler_rechecks_a_refused_connection_when_due(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with access_world(settings, ONOFFICE_ACCESS_RECHECK_S=1) as (world, resources):
        token, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        await resources.queue.join()
        unlock = lock_top_level_inactive(world)
        await world.client.post("/api/v1/syncs", headers=bearer(token))
        await resources.queue.join()
        assert len(await refused_rows(engine)) == 1
        # Still refused: the re-check records it again and the connection stays stopped.
        await _until_due(engine)
        assert await poll.schedule(resources) == 1
        await resources.queue.join()
        assert len(await refused_rows(engine)) == 1
        # Accepted again: the next due re-check resumes it without anybody doing anything.
        unlock()
        await _until_due(engine)
        assert await poll.schedule(resources) == 1
        await resources.queue.join()
        assert await refused_rows(engine) == []


async def _until_due(engine: AsyncEngine) -> None:
    """Move the last check back instead of waiting (no timed assertions)."""
    from sqlalchemy import text

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE onoffice_access SET checked_at = checked_at - interval '1 hour'")
        )


async def test_a_new_activation_clears_the_refusal(settings: Settings, engine: AsyncEngine) -> None:
    async with access_world(settings) as (world, resources):
        token, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        await resources.queue.join()
        lock_token_unknown(world)
        await world.client.post("/api/v1/syncs", headers=bearer(token))
        await resources.queue.join()
        assert len(await refused_rows(engine)) == 1
        # The customer activates the connector again in the Marketplace (new API user).
        await world.activate(tenant(1))
        assert await refused_rows(engine) == []


async def test_another_tenant_is_not_stopped(settings: Settings, engine: AsyncEngine) -> None:
    async with access_world(settings) as (world, resources):
        token_a, _p, _s = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        token_b, _p, _s = await world.tenant_with_brevo(2, BREVO_KEYS[1])
        await resources.queue.join()
        lock_top_level_inactive(world)  # tenant 1 only
        await world.client.post("/api/v1/syncs", headers=bearer(token_a))
        await resources.queue.join()
        assert len(await refused_rows(engine)) == 1
        assert (await status_of(world, token_b, "en"))["onoffice_access"]["state"] == "ok"
        started = await world.client.post("/api/v1/syncs", headers=bearer(token_b))
        assert started.status_code == 202
