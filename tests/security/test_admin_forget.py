"""The operator's erasure API: off (404) without ADMIN_TOKEN, 401 with a wrong token, and
with the right one it erases the person's stored events."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.security.conftest import BREVO_KEYS, bearer, count_events, open_world, tenant
from tests.security.test_webhook_intake import brevo_event, post_brevo

BODY = {"customer": tenant(1).web_id, "email": "Anna@Example.de"}


async def test_off_without_a_token(settings: Settings) -> None:
    async with open_world(settings) as world:
        response = await world.client.post("/admin/v1/forget", json=BODY, headers=bearer("x"))
        assert response.status_code == 404


async def test_erases_with_the_right_token_only(settings: Settings, engine: AsyncEngine) -> None:
    async with open_world(settings, ADMIN_TOKEN=SecretStr("operator-secret")) as world:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        for email in ("anna@example.de", "bob@example.de"):
            assert (await post_brevo(world, path, secret, brevo_event(email))).status_code == 200
        assert await count_events(engine) == 2
        wrong = await world.client.post("/admin/v1/forget", json=BODY, headers=bearer("nope"))
        assert wrong.status_code == 401
        assert await count_events(engine) == 2
        response = await world.client.post(
            "/admin/v1/forget", json=BODY, headers=bearer("operator-secret")
        )
        assert response.status_code == 200, response.text
        assert response.json()["rows"]["inbound_event"] == 1
        assert await count_events(engine) == 1  # Bob's stays
        unknown = await world.client.post(
            "/admin/v1/forget",
            json={**BODY, "customer": "nobody"},
            headers=bearer("operator-secret"),
        )
        assert unknown.status_code == 404
