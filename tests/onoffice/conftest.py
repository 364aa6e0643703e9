from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from emulators.onoffice import DEFAULT_SECRET, DEFAULT_TOKEN, OnOfficeState, create_app
from onoffice_client.client import OnOfficeClient

API_URL = "http://onoffice.test/api/stable/api.php"


@pytest.fixture
def state() -> OnOfficeState:
    return OnOfficeState()


@pytest.fixture
async def http(state: OnOfficeState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://onoffice.test") as client:
        yield client


ClientFactory = Callable[..., OnOfficeClient]


@pytest.fixture
def make_client(http: httpx.AsyncClient) -> ClientFactory:
    def factory(**overrides: Any) -> OnOfficeClient:
        kwargs: dict[str, Any] = {
            "api_url": API_URL,
            "token": DEFAULT_TOKEN,
            "secret": DEFAULT_SECRET,
            "http": http,
            "backoff_initial": 0.01,
            "backoff_max": 0.02,
        }
        return OnOfficeClient(**(kwargs | overrides))

    return factory


@pytest.fixture
def client(make_client: ClientFactory) -> OnOfficeClient:
    return make_client()
