"""The marketplace webhook "address saved": verified, stored once, acknowledged fast."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from emulators.onoffice import OnOfficeState
from tests.tenants.conftest import (
    CUSTOMER_WEB_ID,
    Harness,
    connector,
    fetch_all,
    iframe_params,
    signed_query,
)

HOOK = "/onoffice/webhook"


def webhook_params(**overrides: str) -> dict[str, str]:
    return iframe_params(**{"apiClaim": "webhook-claim", "recordId": "4711", **overrides})


class TestAddressWebhook:
    async def test_stores_the_event_and_the_claim(
        self, harness: Harness, engine: AsyncEngine
    ) -> None:
        await harness.activate()
        now = int(time.time())
        query = signed_query(HOOK, webhook_params(timestamp=str(now), groupId="3"))
        response = await harness.client.get(f"{HOOK}?{query}")
        assert response.status_code == 200
        assert response.json() == {"status": "accepted", "duplicate": False}

        (event,) = await fetch_all(engine, "SELECT * FROM inbound_event")
        (tenant,) = await fetch_all(engine, "SELECT id, api_claim FROM tenant")
        # The incremental sync may already have processed it (this customer has no connection).
        assert event["source"] == "onoffice" and event["status"] in ("pending", "applied")
        assert event["dedupe_key"] == dict(parse_qsl(query))["signature"]
        payload = event["payload"]
        assert payload["address_id"] == 4711
        assert payload["tenant_id"] == tenant["id"]
        assert payload["customerWebId"] == CUSTOMER_WEB_ID
        assert (payload["groupId"], payload["userId"]) == ("3", "17")
        assert payload["timestamp"] == now
        # Data minimisation: neither the claim nor the signed parameters are stored.
        assert "apiClaim" not in payload and "params" not in payload
        assert "webhook-claim" not in str(payload)
        # The saving user is in group 3: the claim is that group's (issue 19).
        assert tenant["api_claim"] != "webhook-claim"
        (claim,) = await fetch_all(engine, "SELECT group_id, claim FROM group_claim")
        assert (claim["group_id"], claim["claim"]) == ("3", "webhook-claim")

    async def test_a_repeated_delivery_is_acknowledged_but_stored_once(
        self, harness: Harness, engine: AsyncEngine
    ) -> None:
        await harness.activate()
        query = signed_query(HOOK, webhook_params())
        first = await harness.client.get(f"{HOOK}?{query}")
        again = await harness.client.get(f"{HOOK}?{query}")
        assert first.json()["duplicate"] is False
        assert again.status_code == 200
        assert again.json() == {"status": "accepted", "duplicate": True}
        assert len(await fetch_all(engine, "SELECT id FROM inbound_event")) == 1

        other = signed_query(HOOK, webhook_params(recordId="4712"))
        assert (await harness.client.get(f"{HOOK}?{other}")).json()["duplicate"] is False
        rows = await fetch_all(engine, "SELECT payload FROM inbound_event ORDER BY id")
        assert [r["payload"]["address_id"] for r in rows] == [4711, 4712]

    async def test_the_id_parameter_name_is_configurable(
        self, settings: Settings, onoffice: OnOfficeState, engine: AsyncEngine
    ) -> None:
        async with connector(settings, onoffice, ONOFFICE_WEBHOOK_ID_PARAM="addressId") as client:
            await Harness(client, onoffice).activate()
            query = signed_query(HOOK, iframe_params(addressId="81"))
            response = await client.get(f"{HOOK}?{query}")
        assert response.status_code == 200
        (event,) = await fetch_all(engine, "SELECT payload FROM inbound_event")
        assert event["payload"]["address_id"] == 81

    async def test_missing_or_bad_address_id(self, harness: Harness, engine: AsyncEngine) -> None:
        await harness.activate()
        for params in (iframe_params(), webhook_params(recordId="12abc")):
            response = await harness.client.get(f"{HOOK}?{signed_query(HOOK, params)}")
            assert response.status_code == 400
            assert "`recordId`" in response.json()["message"]
        assert await fetch_all(engine, "SELECT id FROM inbound_event") == []

    async def test_rejects_unsigned_stale_and_unknown(
        self, harness: Harness, engine: AsyncEngine, settings: Settings
    ) -> None:
        query = signed_query(HOOK, webhook_params())
        unknown = await harness.client.get(f"{HOOK}?{query}")
        assert unknown.status_code == 404
        assert "has not activated" in unknown.json()["message"]

        await harness.activate()
        tampered = await harness.client.get(f"{HOOK}?{query.replace('4711', '4712')}")
        assert tampered.status_code == 401
        stale_ts = str(int(time.time()) - settings.SIGNATURE_MAX_AGE_S - 1)
        stale = signed_query(HOOK, webhook_params(timestamp=stale_ts))
        assert (await harness.client.get(f"{HOOK}?{stale}")).status_code == 401
        assert await fetch_all(engine, "SELECT id FROM inbound_event") == []
        # The 404 above rolled back its replay record: the same URL is now accepted.
        assert (await harness.client.get(f"{HOOK}?{query}")).json()["duplicate"] is False
