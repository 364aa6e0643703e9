"""The connector in-process with emulated onOffice and Brevo, tenants made through the real
marketplace flow, and helpers to post webhooks and read the stored rows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.crypto import hash_token
from app.main import create_app
from devkit import kit
from emulators.brevo import BrevoState
from emulators.brevo import create_app as create_brevo
from emulators.onoffice import Customer, OnOfficeState
from emulators.onoffice import create_app as create_onoffice
from tests.conftest import running_app

PROVIDER_SECRET = "test-provider-secret"
BASE = "https://connector.test"
ONOFFICE_URL = "http://onoffice.test"
BREVO_URL = "http://brevo.test"
BREVO_KEYS = ("brevo-key-a", "brevo-key-b")


def signed_query(
    path: str, params: dict[str, str], *, secret: str = PROVIDER_SECRET, base: str = BASE
) -> str:
    return kit.signed_query(base + path, params, secret)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Tenant:
    web_id: str
    api_token: str
    api_secret: str
    claim: str


def tenant(n: int) -> Tenant:
    return Tenant(
        web_id=f"{7000 + n}",
        api_token=f"marketplace-token-{n:04d}-" + "t" * 16,
        api_secret=f"customer-api-secret-{n:04d}-" + "s" * 40,
        claim=f"claim-{n}-" + "c" * 20,
    )


@dataclass
class World:
    client: httpx.AsyncClient
    onoffice: OnOfficeState
    brevo: BrevoState
    settings: Settings
    resources: Any = None  # the app's (to wait for its in-process jobs)

    def activation_query(self, t: Tenant, **extra: str) -> str:
        cache_id = f"cache-{t.web_id}"
        self.onoffice.customers[t.api_token] = Customer(
            token=t.api_token, secret=t.api_secret, claim=t.claim
        )
        self.onoffice.parameter_caches[cache_id] = f"activation-{t.web_id}"
        return signed_query(
            "/onoffice/activate",
            {
                "apiToken": t.api_token,
                "apiClaim": f"activation-{t.web_id}",
                "customerName": f"Makler {t.web_id}",
                "customerWebId": t.web_id,
                "userId": "17",
                "parameterCacheId": cache_id,
                **extra,
            },
        )

    async def activate(self, t: Tenant) -> None:
        query = self.activation_query(t)
        form = {**dict(httpx.QueryParams(query)), "secret": t.api_secret}
        response = await self.client.post("/onoffice/activate", data=form)
        assert response.text == "active", response.text

    def iframe_query(self, t: Tenant, **extra: str) -> str:
        params = {
            "customerWebId": t.web_id,
            "customerName": f"Makler {t.web_id}",
            "userId": "17",
            "apiClaim": t.claim,
            **extra,
        }
        return signed_query("/onoffice/app", params)

    async def session(self, t: Tenant, **extra: str) -> str:
        response = await self.client.post(
            "/api/v1/sessions", json={"query": self.iframe_query(t, **extra)}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    async def connect_brevo(self, token: str, api_key: str) -> tuple[str, str]:
        """PUT /api/v1/connection with a Brevo key; (webhook path, bearer secret)."""
        response = await self.client.put(
            "/api/v1/connection",
            headers=bearer(token),
            json={"provider": "brevo", "api_key": api_key},
        )
        assert response.status_code == 200, response.text
        hooks = list(self.brevo.accounts[api_key].webhooks.values())
        hook = hooks[-1]
        path = str(httpx.URL(hook["url"]).path)
        return path, str(hook["auth"]["token"])

    async def tenant_with_brevo(self, n: int, api_key: str) -> tuple[str, str, str]:
        """A new tenant, activated, signed in and connected: (session, hook path, secret)."""
        t = tenant(n)
        await self.activate(t)
        token = await self.session(t)
        path, secret = await self.connect_brevo(token, api_key)
        return token, path, secret


def world_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "ONOFFICE_API_URL": f"{ONOFFICE_URL}/api/stable/api.php",
            "BREVO_API_URL": f"{BREVO_URL}/v3",
            "PROVIDER_MAX_RETRIES": 0,
            **overrides,
        }
    )


@contextlib.asynccontextmanager
async def open_world(settings: Settings, **overrides: Any) -> AsyncIterator[World]:
    onoffice, brevo = OnOfficeState(), BrevoState()
    for key in BREVO_KEYS:
        brevo.add_account(key, "de")
    http = httpx.AsyncClient(
        mounts={
            ONOFFICE_URL: httpx.ASGITransport(app=create_onoffice(onoffice)),
            BREVO_URL: httpx.ASGITransport(app=create_brevo(brevo)),
        }
    )
    settings = world_settings(settings, **overrides)
    app = create_app(settings, http=http)
    async with running_app(app, base_url=BASE) as client:
        yield World(client, onoffice, brevo, settings, app.state.resources)


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async with open_world(settings) as w:
        yield w


async def fetch_all(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row) for row in result.mappings()]


async def count_events(engine: AsyncEngine) -> int:
    rows = await fetch_all(engine, "SELECT count(*) AS n FROM inbound_event")
    return int(rows[0]["n"])


__all__ = ["hash_token"]
