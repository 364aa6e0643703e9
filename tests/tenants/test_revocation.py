"""Issue 21, finding M6: access can be revoked. `connector deactivate` cuts a cancelled
customer off (sessions, iframe, background polls); `connector revoke-sessions` refuses every
session issued until then; activating again in the Marketplace restores access."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import main
from app.config import Settings, get_settings
from app.connections.repository import ConnectionRepository
from app.db.models import Connection
from app.resources import Resources
from tests.tenants.conftest import (
    ACTIVATION_CLAIM,
    CACHE_ID,
    CUSTOMER_WEB_ID,
    Harness,
    fetch_all,
    iframe_params,
    signed_query,
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line reads its settings from the environment, like production."""
    monkeypatch.setenv("DATABASE_URL", settings.DATABASE_URL)
    monkeypatch.setenv("ENV", "testing")
    monkeypatch.setenv("ONOFFICE_PROVIDER_SECRET", "test-provider-secret")
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def status_of(harness: Harness, token: str) -> int:
    return (await harness.client.get("/api/v1/session", headers=bearer(token))).status_code


async def test_deactivate_cuts_the_customer_off_until_activated_again(
    harness: Harness, engine: AsyncEngine, cli_env: None
) -> None:
    await harness.activate()
    token = await harness.session_token()
    assert await status_of(harness, token) == 200

    assert await asyncio.to_thread(main, ["deactivate", "--customer", CUSTOMER_WEB_ID]) == 0
    response = await harness.client.get("/api/v1/session", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_session"
    query = signed_query("/onoffice/app", iframe_params())
    assert (await harness.client.get(f"/onoffice/app?{query}")).status_code == 403
    rows = await fetch_all(engine, "SELECT active, deactivated_reason FROM tenant")
    assert rows == [{"active": False, "deactivated_reason": "deactivated by an operator"}]
    assert await asyncio.to_thread(main, ["deactivate", "--customer", "nobody"]) == 2

    # The Marketplace activation turns it on again; the old session stays revoked.
    await asyncio.sleep(1.0)  # sessions carry whole seconds
    harness.onoffice.parameter_caches[CACHE_ID] = ACTIVATION_CLAIM  # a new Marketplace visit
    assert (await harness.activate()).text == "active"
    assert await status_of(harness, token) == 401
    assert await status_of(harness, await harness.session_token()) == 200


async def test_revoke_sessions_refuses_every_session_issued_until_then(
    harness: Harness, cli_env: None
) -> None:
    await harness.activate()
    old = await harness.session_token()
    assert await status_of(harness, old) == 200
    assert await asyncio.to_thread(main, ["revoke-sessions", "--customer", CUSTOMER_WEB_ID]) == 0
    assert await status_of(harness, old) == 401
    await asyncio.sleep(1.0)
    fresh = await harness.session_token()
    assert await status_of(harness, fresh) == 200


async def test_a_deactivated_customers_connections_are_not_polled(
    harness: Harness, engine: AsyncEngine, resources: Resources, cli_env: None
) -> None:
    await harness.activate()
    rows = await fetch_all(engine, "SELECT id FROM tenant")
    async with resources.transaction() as session:
        session.add(
            Connection(
                tenant_id=rows[0]["id"],
                group_id="",
                provider="brevo",
                list_id="7",
                api_key_encrypted=b"x",
                webhook_token="tok",
            )
        )

    async def polled() -> list[int]:
        async with resources.transaction() as session:
            return [
                c.tenant_id for c in await ConnectionRepository.from_session(session).with_list()
            ]

    assert await polled() == [rows[0]["id"]]
    assert await asyncio.to_thread(main, ["deactivate", "--customer", CUSTOMER_WEB_ID]) == 0
    assert await polled() == []
