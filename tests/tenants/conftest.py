"""The app wired to the onOffice emulator for its outbound calls, and signed-URL helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.main import create_app
from devkit import kit
from emulators.onoffice import Customer, OnOfficeState
from emulators.onoffice import create_app as create_emulator
from tests.conftest import running_app

PROVIDER_SECRET = "test-provider-secret"
BASE = "https://connector.test"
EMULATOR_URL = "http://onoffice.test"
API_TOKEN = "marketplacetoken0000000000000042"
API_SECRET = "customer-api-secret-" + "7" * 44
CACHE_ID = "param-cache-1"
ACTIVATION_CLAIM = "activation-claim+1/="
CUSTOMER_WEB_ID = "21345"


def signed_query(path: str, params: dict[str, str], *, secret: str = PROVIDER_SECRET) -> str:
    """The query string onOffice would append to BASE + path (timestamp added if absent)."""
    return kit.signed_query(BASE + path, params, secret)


def activation_params(**overrides: str) -> dict[str, str]:
    return {
        "apiToken": API_TOKEN,
        "apiClaim": ACTIVATION_CLAIM,
        "customerName": "Muster Immobilien GmbH",
        "customerWebId": CUSTOMER_WEB_ID,
        "userId": "17",
        "parameterCacheId": CACHE_ID,
        **overrides,
    }


def iframe_params(**overrides: str) -> dict[str, str]:
    return {
        "customerWebId": CUSTOMER_WEB_ID,
        "customerName": "Muster Immobilien GmbH",
        "userId": "17",
        "apiClaim": "iframe-claim-1",
        **overrides,
    }


def form_of(query: str, secret: str = API_SECRET) -> dict[str, str]:
    """What the activation page posts: the signed parameters plus the pasted key."""
    return {**dict(httpx.QueryParams(query)), "secret": secret}


@pytest.fixture
def onoffice() -> OnOfficeState:
    """The emulated onOffice: a marketplace customer waiting for activation."""
    state = OnOfficeState()
    state.customers[API_TOKEN] = Customer(token=API_TOKEN, secret=API_SECRET, claim="current-claim")
    state.parameter_caches[CACHE_ID] = ACTIVATION_CLAIM
    return state


AppFactory = Callable[..., Any]


@dataclass
class Harness:
    client: httpx.AsyncClient
    onoffice: OnOfficeState

    async def activate(self, **overrides: str) -> httpx.Response:
        query = signed_query("/onoffice/activate", activation_params(**overrides))
        return await self.client.post("/onoffice/activate", data=form_of(query))

    async def session_token(self, **overrides: str) -> str:
        query = signed_query("/onoffice/app", iframe_params(**overrides))
        response = await self.client.post("/api/v1/sessions", json={"query": query})
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token


@pytest.fixture
async def harness(settings: Settings, onoffice: OnOfficeState) -> AsyncIterator[Harness]:
    async with connector(settings, onoffice) as client:
        yield Harness(client=client, onoffice=onoffice)


def connector(settings: Settings, onoffice: OnOfficeState, **overrides: Any) -> Any:
    """The connector app whose outbound HTTP reaches the onOffice emulator in-process."""
    settings = settings.model_copy(
        update={"ONOFFICE_API_URL": f"{EMULATOR_URL}/api/stable/api.php", **overrides}
    )
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_emulator(onoffice)), base_url=EMULATOR_URL
    )
    return running_app(create_app(settings, http=http), base_url=BASE)


async def fetch_all(engine: AsyncEngine, sql: str, **params: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [dict(row) for row in result.mappings()]
