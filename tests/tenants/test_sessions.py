"""The service iframe, the session exchange and bearer authentication."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.crypto import generate_key
from emulators.onoffice import OnOfficeState
from tests.tenants.conftest import (
    CUSTOMER_WEB_ID,
    Harness,
    connector,
    fetch_all,
    iframe_params,
    signed_query,
)

APP = "/onoffice/app"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestIframePage:
    async def test_stores_the_latest_claim_and_embeds_the_signed_query(
        self, harness: Harness, engine: AsyncEngine
    ) -> None:
        await harness.activate()
        now = int(time.time())
        query = signed_query(APP, iframe_params(apiClaim="claim-new", timestamp=str(now)))
        response = await harness.client.get(f"{APP}?{query}")
        assert response.status_code == 200
        assert '<html lang="de">' in response.text
        assert _embedded_query(response.text) == query  # for the session exchange
        (row,) = await fetch_all(engine, "SELECT api_claim, api_claim_at FROM tenant")
        assert row["api_claim"] == "claim-new"
        assert int(row["api_claim_at"].timestamp()) == now

        # A URL signed earlier but arriving later must not bring back an older claim.
        older = signed_query(APP, iframe_params(apiClaim="claim-old", timestamp=str(now - 20)))
        assert (await harness.client.get(f"{APP}?{older}")).status_code == 200
        (row,) = await fetch_all(engine, "SELECT api_claim FROM tenant")
        assert row["api_claim"] == "claim-new"

    async def test_english_page(self, harness: Harness) -> None:
        await harness.activate()
        query = signed_query(APP, iframe_params(UserLanguage="ENG"))
        response = await harness.client.get(f"{APP}?{query}")
        assert '<html lang="en">' in response.text

    async def test_customer_who_never_activated_gets_a_clear_page(self, harness: Harness) -> None:
        query = signed_query(APP, iframe_params())
        response = await harness.client.get(f"{APP}?{query}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "noch nicht aktiviert" in response.text

    async def test_deactivated_customer(self, harness: Harness, engine: AsyncEngine) -> None:
        await harness.activate()
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE tenant SET active = false"))
        query = signed_query(APP, iframe_params(UserLanguage="ENG"))
        response = await harness.client.get(f"{APP}?{query}")
        assert response.status_code == 403
        assert "deactivated" in response.text

    async def test_rejects_bad_signature_and_replay(self, harness: Harness) -> None:
        await harness.activate()
        query = signed_query(APP, iframe_params())
        tampered = await harness.client.get(f"{APP}?{query.replace('userId=17', 'userId=1')}")
        assert tampered.status_code == 401
        assert (await harness.client.get(f"{APP}?{query}")).status_code == 200
        replay = await harness.client.get(f"{APP}?{query}")
        assert replay.status_code == 401
        assert "already used" in replay.json()["message"]


class TestCreateSession:
    async def test_the_iframe_query_buys_a_bound_token(
        self, harness: Harness, engine: AsyncEngine, settings: Settings
    ) -> None:
        await harness.activate()
        query = signed_query(APP, iframe_params(groupId="12", apiClaim="session-claim"))
        # The page view and the exchange are separate purposes of the same signed URL.
        assert (await harness.client.get(f"{APP}?{query}")).status_code == 200
        response = await harness.client.post("/api/v1/sessions", json={"query": "?" + query})
        assert response.status_code == 201
        body = response.json()
        remaining = _seconds_until(body["expires_at"])
        assert settings.SESSION_TTL_S - 5 < remaining <= settings.SESSION_TTL_S
        (row,) = await fetch_all(engine, "SELECT id, api_claim FROM tenant")
        # A group user's claim is kept for that group (with its user), never as the
        # customer-wide claim (issue 19).
        assert row["api_claim"] != "session-claim"
        (claim,) = await fetch_all(engine, "SELECT group_id, user_id, claim FROM group_claim")
        assert (claim["group_id"], claim["user_id"], claim["claim"]) == (
            "12",
            "17",
            "session-claim",
        )

        who = await harness.client.get("/api/v1/session", headers=bearer(body["token"]))
        assert who.status_code == 200
        assert who.json() == {
            "tenant_id": row["id"],
            "customer_web_id": CUSTOMER_WEB_ID,
            "customer_name": "Muster Immobilien GmbH",
            "group_id": "12",
            "user_id": "17",
        }

    async def test_without_group_the_group_is_empty(self, harness: Harness) -> None:
        await harness.activate()
        token = await harness.session_token(userId="99")
        who = (await harness.client.get("/api/v1/session", headers=bearer(token))).json()
        assert (who["group_id"], who["user_id"]) == ("", "99")

    async def test_tampered_query(self, harness: Harness) -> None:
        await harness.activate()
        query = signed_query(APP, iframe_params(groupId="12"))
        response = await harness.client.post(
            "/api/v1/sessions", json={"query": query.replace("groupId=12", "groupId=13")}
        )
        assert response.status_code == 401
        assert "signature is invalid" in response.json()["message"]

    async def test_query_signed_for_another_path(self, harness: Harness) -> None:
        await harness.activate()
        query = signed_query("/onoffice/webhook", iframe_params())
        response = await harness.client.post("/api/v1/sessions", json={"query": query})
        assert response.status_code == 401

    async def test_replayed_query(self, harness: Harness) -> None:
        await harness.activate()
        query = signed_query(APP, iframe_params())
        first = await harness.client.post("/api/v1/sessions", json={"query": query})
        assert first.status_code == 201
        replay = await harness.client.post("/api/v1/sessions", json={"query": query})
        assert replay.status_code == 401
        assert "already used" in replay.json()["message"]

    async def test_concurrent_exchanges_of_one_query_yield_one_token(
        self, harness: Harness
    ) -> None:
        await harness.activate()
        query = signed_query(APP, iframe_params())
        responses = await asyncio.gather(
            *(harness.client.post("/api/v1/sessions", json={"query": query}) for _ in range(4))
        )
        assert sorted(r.status_code for r in responses) == [201, 401, 401, 401]

    async def test_customer_not_activated(self, harness: Harness) -> None:
        query = signed_query(APP, iframe_params())
        response = await harness.client.post("/api/v1/sessions", json={"query": query})
        assert response.status_code == 404
        assert response.json()["error"] == "not_activated"


class TestBearer:
    async def test_missing_token(self, harness: Harness) -> None:
        response = await harness.client.get("/api/v1/session")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "missing bearer token" in response.json()["message"]

    async def test_garbage_token(self, harness: Harness) -> None:
        values: tuple[bytes, ...] = (b"Bearer garbage", "Bearer ä".encode(), b"Basic dXNlcjpwdw==")
        for value in values:
            response = await harness.client.get(
                "/api/v1/session", headers=[(b"Authorization", value)]
            )
            assert response.status_code == 401, value
            assert response.headers["www-authenticate"] == "Bearer"

    async def test_token_of_another_installation(
        self, harness: Harness, settings: Settings, onoffice: OnOfficeState
    ) -> None:
        await harness.activate()
        token = await harness.session_token()
        other_key = SecretStr(generate_key())
        async with connector(settings, onoffice, ENCRYPTION_KEY=other_key) as other:
            response = await other.get("/api/v1/session", headers=bearer(token))
        assert response.status_code == 401
        assert "invalid or has expired" in response.json()["message"]

    async def test_expired_token(
        self, harness: Harness, settings: Settings, onoffice: OnOfficeState
    ) -> None:
        await harness.activate()
        async with connector(settings, onoffice, SESSION_TTL_S=1) as short_lived:
            token = await harness.session_token()
            assert (await short_lived.get("/api/v1/session", headers=bearer(token))).is_success
            await asyncio.sleep(2.1)  # Fernet counts whole seconds
            response = await short_lived.get("/api/v1/session", headers=bearer(token))
        assert response.status_code == 401
        assert "expired" in response.json()["message"]
        # The same token is still fine where sessions live longer.
        assert (await harness.client.get("/api/v1/session", headers=bearer(token))).is_success

    async def test_deactivated_or_removed_tenant(
        self, harness: Harness, engine: AsyncEngine
    ) -> None:
        await harness.activate()
        token = await harness.session_token()
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE tenant SET active = false"))
        response = await harness.client.get("/api/v1/session", headers=bearer(token))
        assert response.status_code == 401
        assert "deactivated" in response.json()["message"]
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM tenant"))
        response = await harness.client.get("/api/v1/session", headers=bearer(token))
        assert response.status_code == 401
        assert "unknown customer" in response.json()["message"]


def _embedded_query(html: str) -> str:
    match = re.search(r"var signedQuery = (\"[^\"]*\");", html)
    assert match is not None
    query: str = json.loads(match.group(1))
    return query


def _seconds_until(iso: str) -> float:
    return (datetime.fromisoformat(iso) - datetime.now(UTC)).total_seconds()
