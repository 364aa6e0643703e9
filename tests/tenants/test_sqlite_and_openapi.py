"""The embedded (SQLite) mode runs the same flow; the OpenAPI document is usable from /docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.config import Environment, Settings
from app.db.migrate import migrate
from emulators.onoffice import OnOfficeState
from tests.tenants.conftest import (
    Harness,
    activation_params,
    connector,
    form_of,
    iframe_params,
    signed_query,
)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'embedded.db'}"
    migrate(url)  # runs its own event loop, hence a sync fixture
    return url


async def test_activation_session_and_webhook_on_sqlite(
    sqlite_url: str, onoffice: OnOfficeState
) -> None:
    url = sqlite_url
    settings = Settings(
        ENV=Environment.testing,
        DATABASE_URL=url,
        ONOFFICE_PROVIDER_SECRET="test-provider-secret",
        PUBLIC_BASE_URL="https://connector.test",
    )
    async with connector(settings, onoffice) as client:
        harness = Harness(client, onoffice)
        query = signed_query("/onoffice/activate", activation_params())
        wrong = await client.post("/onoffice/activate", data=form_of(query, "wrong"))
        assert wrong.status_code == 400
        assert (await client.post("/onoffice/activate", data=form_of(query))).text == "active"
        replay = await client.post("/onoffice/activate", data=form_of(query))
        assert replay.status_code == 401

        token = await harness.session_token(groupId="4")
        who = await client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
        assert who.json()["group_id"] == "4"

        hook = signed_query("/onoffice/webhook", iframe_params(recordId="5"))
        first = await client.get(f"/onoffice/webhook?{hook}")
        second = await client.get(f"/onoffice/webhook?{hook}")
        assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)


async def test_every_tenants_route_is_documented(harness: Harness) -> None:
    spec: dict[str, Any] = (await harness.client.get("/openapi.json")).json()
    routes = {
        ("get", "/onoffice/activate"),
        ("post", "/onoffice/activate"),
        ("get", "/onoffice/app"),
        ("get", "/onoffice/webhook"),
        ("post", "/api/v1/sessions"),
        ("get", "/api/v1/session"),
    }
    for method, path in routes:
        operation = spec["paths"][path][method]
        assert operation.get("summary"), (method, path)
        assert "401" in operation["responses"], (method, path)
    session_op = spec["paths"]["/api/v1/session"]["get"]
    assert session_op["security"] == [{"HTTPBearer": []}]
    assert "ErrorBody" in spec["components"]["schemas"]
