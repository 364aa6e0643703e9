"""Issue 21, findings M2, M3, M4, L1 and L9: a delivery without events answered without the
group commit and never failing its neighbours, a body cap on every route, Brevo list ids that
cannot amplify one item into many events, a bounded problems offset, and a 422 that does not
echo what was sent."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from providers.brevo.webhooks import MAX_LIST_IDS_PER_ITEM, parse_webhook
from tests.security.conftest import BREVO_KEYS, World, bearer, count_events, fetch_all
from tests.security.test_webhook_intake import brevo_event, post_brevo


async def own_list(engine: AsyncEngine) -> str:
    rows = await fetch_all(engine, "SELECT list_id FROM connection ORDER BY id LIMIT 1")
    return str(rows[0]["list_id"])


class TestDeliveriesWithoutEvents:
    async def test_empty_and_other_list_deliveries_do_not_fail_their_neighbours(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path_a, secret_a = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        _, path_b, secret_b = await world.tenant_with_brevo(2, BREVO_KEYS[1])
        other_list = {"event": "opened", "email": "x@example.de", "list_id": "987654"}
        for _ in range(3):
            empties = [post_brevo(world, path_a, secret_a, []) for _ in range(3)]
            others = [post_brevo(world, path_a, secret_a, other_list) for _ in range(2)]
            real = [
                post_brevo(world, path_b, secret_b, brevo_event(f"b{i}@example.de"))
                for i in range(10)
            ]
            answers = await asyncio.gather(*empties, *others, *real)
            assert [a.status_code for a in answers] == [200] * len(answers), [
                a.text for a in answers if a.status_code != 200
            ]
            assert [a.json()["stored"] for a in answers[:5]] == [0] * 5
        assert await count_events(engine) == 10  # tenant B's ten, each stored once


class TestBodyCaps:
    async def test_a_huge_session_body_is_413_before_it_is_parsed(
        self, world: World, engine: AsyncEngine
    ) -> None:
        huge = json.dumps({f"k{i}": i for i in range(1_000_000)}).encode()  # ~12 MB
        started = time.perf_counter()
        response = await world.client.post(
            "/api/v1/sessions", content=huge, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413, response.text
        assert time.perf_counter() - started < 1.0

        async def chunks() -> Any:  # no Content-Length: the stream is cut at the cap
            for _ in range(64):
                yield b" " * 65536

        streamed = await world.client.post(
            "/api/v1/sessions", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413

    async def test_the_api_and_the_pages_have_caps_of_their_own(self, world: World) -> None:
        body = b"x" * (world.settings.API_MAX_BODY_BYTES + 1)
        response = await world.client.put(
            "/api/v1/connection", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        form = b"a=" + b"x" * world.settings.OTHER_MAX_BODY_BYTES
        response = await world.client.post(
            "/onoffice/activate",
            content=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 413


class TestBrevoAmplification:
    async def test_one_item_naming_many_lists_is_stored_as_one_event(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        mine = await own_list(engine)
        many = [str(n) for n in range(100_000, 150_000)]
        item = brevo_event("anna@example.de", list_id=many)  # other lists only
        response = await post_brevo(world, path, secret, item)
        assert response.status_code == 200 and response.json()["stored"] == 1
        with_mine = brevo_event("ben@example.de", list_id=[*many[:500], mine])
        response = await post_brevo(world, path, secret, with_mine)
        assert response.status_code == 200 and response.json()["stored"] == 1
        stored = await fetch_all(engine, "SELECT payload->>'list_id' AS l FROM inbound_event")
        assert sorted(str(r["l"]) for r in stored) == sorted([many[0], mine])

    def test_without_a_list_an_item_becomes_at_most_the_capped_number_of_events(self) -> None:
        ids = ",".join(str(n) for n in range(5000))
        events = parse_webhook(brevo_event("anna@example.de", list_id=ids))
        assert len(events) == MAX_LIST_IDS_PER_ITEM


class TestSmallerFindings:
    async def test_an_offset_beyond_bigint_is_422(self, world: World) -> None:
        token, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        for offset in (2**63, 10**30):
            response = await world.client.get(
                f"/api/v1/syncs/1/problems?offset={offset}", headers=bearer(token)
            )
            assert response.status_code == 422, response.text

    async def test_a_refused_api_key_is_not_echoed(self, world: World) -> None:
        token, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        secret_key = "s3cr3t-\u00e9-key-value"  # not ASCII: refused by the schema
        response = await world.client.put(
            "/api/v1/connection",
            headers=bearer(token),
            json={"provider": "brevo", "api_key": secret_key},
        )
        assert response.status_code == 422
        assert secret_key not in response.text
