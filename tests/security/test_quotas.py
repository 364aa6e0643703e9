"""Issue 21, finding M5: user-triggered work is bounded per tenant. Any number of "check now"
clicks queue one poll per connection and 10-second slot; the status page's live provider
count is cached and fetched without holding a database connection, so one tenant's slow
provider does not starve another tenant's requests."""

from __future__ import annotations

import asyncio
import os
import time

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.security.conftest import BREVO_KEYS, bearer, fetch_all, open_world, tenant
from tests.security.test_webhook_intake import brevo_event, post_brevo

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")


async def poll_jobs(connection_id: int) -> int:
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = await client.keys(f"arq:job:incremental.poll:{connection_id}:now:*")
        return len(keys)
    finally:
        await client.aclose()


async def connection_id(engine: AsyncEngine) -> int:
    rows = await fetch_all(engine, "SELECT max(id) AS id FROM connection")
    return int(rows[0]["id"])


async def test_many_poll_clicks_queue_one_job(settings: Settings, engine: AsyncEngine) -> None:
    async with open_world(settings, REDIS_URL=REDIS_URL) as world:
        token, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        cid = await connection_id(engine)
        before = await poll_jobs(cid)
        # Within one 10-second slot (the clicks take well under a second).
        if time.time() % 10 > 7:
            await asyncio.sleep(10 - time.time() % 10)
        answers = await asyncio.gather(
            *(world.client.post("/api/v1/changes/poll", headers=bearer(token)) for _ in range(100))
        )
        assert {a.status_code for a in answers} == {202}, {a.text for a in answers}
        assert await poll_jobs(cid) - before == 1


async def test_a_slow_provider_does_not_starve_another_tenant(settings: Settings) -> None:
    async with open_world(settings) as world:
        token_a, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        t_b = tenant(2)
        await world.activate(t_b)
        token_b = await world.session(t_b)
        world.brevo.config.latency = 4.0  # every Brevo answer takes four seconds

        statuses = [
            asyncio.create_task(world.client.get("/api/v1/status", headers=bearer(token_a)))
            for _ in range(25)
        ]
        await asyncio.sleep(0.5)  # A's status calls now wait for Brevo
        response = await world.client.get("/api/v1/session", headers=bearer(token_b))
        assert response.status_code == 200, response.text
        # B is answered while A's calls still wait for Brevo: holding a pooled connection per
        # status call, B would have waited for Brevo's answer too (an order, not a time limit).
        done = [t.result().status_code for t in statuses if t.done()]
        assert not done, done
        answers = await asyncio.gather(*statuses)
        assert all(a.status_code == 200 for a in answers)
        # The live count is cached: the next status calls ask Brevo no more.
        world.brevo.config.latency = 0.0
        asked = dict(world.brevo.request_counts)
        for _ in range(10):
            response = await world.client.get("/api/v1/status", headers=bearer(token_a))
            assert response.json()["counts"]["provider_contacts"] is not None
        assert dict(world.brevo.request_counts) == asked


async def test_one_tenants_flood_is_refused_429_and_the_other_is_served(
    settings: Settings,
) -> None:
    # The token bucket alone (the in-flight share would spread the 40 calls over time).
    async with open_world(
        settings, API_RATE_PER_TENANT=5.0, API_BURST_PER_TENANT=10.0, API_CONCURRENCY_PER_TENANT=0
    ) as world:
        token_a, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        t_b = tenant(2)
        await world.activate(t_b)
        token_b = await world.session(t_b)
        flood = await asyncio.gather(
            *(world.client.get("/api/v1/session", headers=bearer(token_a)) for _ in range(40))
        )
        codes = [r.status_code for r in flood]
        assert codes.count(200) <= 12 and codes.count(429) >= 28, codes
        refused = next(r for r in flood if r.status_code == 429)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "too_many_requests"
        assert (
            await world.client.get("/api/v1/session", headers=bearer(token_b))
        ).status_code == 200


async def test_a_flooded_webhook_address_is_asked_to_deliver_again_alone(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with open_world(
        settings, WEBHOOK_RATE_PER_CONNECTION=1.0, WEBHOOK_BURST_PER_CONNECTION=5.0
    ) as world:
        _, path_a, secret_a = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        _, path_b, secret_b = await world.tenant_with_brevo(2, BREVO_KEYS[1])
        answers = [
            await post_brevo(world, path_a, secret_a, brevo_event(f"a{i}@example.de"))
            for i in range(10)
        ]
        codes = [a.status_code for a in answers]
        assert codes.count(200) in (5, 6) and codes.count(429) >= 4, codes  # Brevo: 429
        assert all(a.headers.get("retry-after") for a in answers if a.status_code == 429)
        other = await post_brevo(world, path_b, secret_b, brevo_event("b@example.de"))
        assert other.status_code == 200
