"""Consent suite: the product over HTTP (embedded jobs) against the three emulators."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY, Member, subscriber_hash
from tests.e2e.conftest import World, e2e_settings, http, world  # noqa: F401  (fixtures)
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    start_connector,
)
from tests.e2e.test_webhooks import address, fired_at  # noqa: F401  (shared with the suite)

BREVO_KEY = "test-key-de"


async def eventually(check: Callable[[], Any], what: str, wait_s: float = 30) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@dataclass
class Scene:
    """One connected customer: what an estate agent and the provider do, and what to look at."""

    world: World
    http: httpx.AsyncClient
    connector: Connector
    token: str
    provider: str
    list_id: str
    hook_url: str
    key: str

    # -- the connector ---------------------------------------------------------------------

    async def sync(self, *, force: bool = False) -> dict[str, Any]:
        if not force:
            return await run_full_sync(self.http, self.connector, self.token)
        started = await self.api("POST", "/api/v1/syncs", json={"force": True})
        assert started.status_code == 202, started.text
        from tests.e2e.harness import wait_for_run

        return await wait_for_run(self.http, self.connector.url, self.token, started.json()["id"])

    async def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.http.request(
            method, f"{self.connector.url}{path}", headers=auth(self.token), **kw
        )

    async def status(self) -> dict[str, Any]:
        response = await self.api("GET", "/api/v1/status")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def settled(self, wait_s: float = 30) -> dict[str, Any]:
        """Wait until no received event is pending."""
        body: dict[str, Any] = {}

        async def done() -> bool:
            nonlocal body
            body = await self.status()
            return int(body["pending"]["inbound_events"]) == 0

        await eventually(done, "events applied", wait_s)
        return body

    async def problems(self, run_id: int) -> list[dict[str, Any]]:
        response = await self.api("GET", f"/api/v1/syncs/{run_id}/problems")
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def poll(self) -> None:
        """onOffice changes since the last poll reach the provider (waits for the poll)."""
        before = await self._watermark()
        await asyncio.sleep(1.1)  # Aenderung has second resolution
        response = await self.api("POST", "/api/v1/changes/poll")
        assert response.status_code == 202

        async def moved() -> bool:
            return await self._watermark() != before

        await eventually(moved, "the poll")

    async def _watermark(self) -> Any:
        from sqlalchemy import select

        from app.db.engine import create_engine
        from app.db.models import Connection

        engine = create_engine(self.connector.settings.DATABASE_URL)
        try:
            async with engine.connect() as conn:
                # The newest connection is this scene's (scenes are made one after another).
                return await conn.scalar(
                    select(Connection.onoffice_watermark).order_by(Connection.id.desc()).limit(1)
                )
        finally:
            await engine.dispose()

    # -- the provider ----------------------------------------------------------------------

    def member(self, email: str) -> Member | None:
        return self.world.mailchimp.lists[self.list_id].members.get(subscriber_hash(email))

    def brevo_contact(self, email: str) -> Any:
        return self.world.brevo.accounts[self.key].contacts.get(email)

    async def mailchimp_event(
        self, kind: str, email: str, when: str | None = None, **data: str
    ) -> None:
        form = {"type": kind, "fired_at": when or fired_at(), "data[email]": email}
        form |= {"data[list_id]": self.list_id}
        form |= {f"data[{k}]": v for k, v in data.items()}
        response = await self.http.post(self.hook_url, data=form)
        assert response.status_code == 200, response.text

    async def brevo_event(self, event: dict[str, Any]) -> None:
        hook = next(iter(self.world.brevo.accounts[self.key].webhooks.values()))
        headers = {}
        auth_cfg = hook.get("auth") or {}
        if auth_cfg.get("token"):
            headers["Authorization"] = f"Bearer {auth_cfg['token']}"
        event = {"ts": int(time.time()), "email": "", **event}
        response = await self.http.post(hook["url"], json=event, headers=headers)
        assert response.status_code == 200, response.text

    # -- onOffice ----------------------------------------------------------------------------

    def newsletter(self, address_id: int) -> str:
        return str(self.world.onoffice.addresses[address_id].to_dict()["newsletter_aktiv"])

    def activities(self, address_id: int) -> list[dict[str, Any]]:
        return [a for a in self.world.onoffice.activities if a["address_id"] == address_id]


async def connect_scene(
    emulated: World,
    settings: Settings,
    client: httpx.AsyncClient,
    provider: str,
    *,
    web_id: str = "C1",
    sync: bool = True,
) -> Scene:
    connector = start_connector(settings)
    tenant = Tenant(web_id, web_id.lower() * 16, "z" * 64, f"claim-{web_id}")
    key = DEFAULT_API_KEY if provider == "mailchimp" else BREVO_KEY
    token, saved = await connect_tenant(
        client, connector, emulated.onoffice_url, tenant, provider, key
    )
    list_id = saved["list_id"]
    if provider == "mailchimp":
        (hook,) = emulated.mailchimp.lists[list_id].webhooks.values()
    else:
        (hook,) = emulated.brevo.accounts[key].webhooks.values()
    scene = Scene(emulated, client, connector, token, provider, list_id, hook["url"], key)
    if sync:
        run = await scene.sync()
        assert run["status"] == "completed", run
    return scene


@pytest.fixture
def consent_settings(e2e_settings: Settings) -> Settings:  # noqa: F811
    return e2e_settings.model_copy(
        update={
            "ARCHIVE_BURST_WINDOW_S": 3.0,
            "ARCHIVE_BURST_THRESHOLD": 5,
            # The run's batch comes about 1.5 s after its list read in the opt-out test.
            "OPT_OUT_RECHECK_S": 1.0,
        }
    )


@pytest.fixture
async def scenes(
    world: World,  # noqa: F811
    consent_settings: Settings,
    http: httpx.AsyncClient,  # noqa: F811
) -> AsyncIterator[Callable[..., Any]]:
    started: list[Scene] = []

    async def make(provider: str, **kw: Any) -> Scene:
        scene = await connect_scene(world, consent_settings, http, provider, **kw)
        started.append(scene)
        return scene

    yield make
    for scene in started:
        scene.connector.stop()
