"""Issue 21, tenant fairness: whatever its rate, one tenant (or one webhook address) has at
most API_CONCURRENCY_PER_TENANT (WEBHOOK_CONCURRENCY_PER_CONNECTION) requests in the API
process at a time; more wait for a slot and are refused 429 (a webhook: its provider's
"deliver again" status) after FAIR_SHARE_WAIT_S, while another tenant is served at once. The
latency this buys is measured by bench/fairness.py (timed assertions are not allowed here)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.config import Settings
from app.quotas import FairShare, InFlight
from tests.security.conftest import BREVO_KEYS, bearer, open_world, tenant


async def test_in_flight_admits_at_most_the_limit_per_key() -> None:
    limiter = InFlight(2, wait_s=30)
    inside = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0}
    release = asyncio.Event()

    async def request(key: str) -> bool:
        async with limiter.slot(key) as held:
            if held:
                inside[key] += 1
                most[key] = max(most[key], inside[key])
                await release.wait()
                inside[key] -= 1
            return held

    flood = [asyncio.create_task(request("a")) for _ in range(10)]
    other = asyncio.create_task(request("b"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert inside == {"a": 2, "b": 1}  # b got in although a has ten requests waiting
    release.set()
    assert all(await asyncio.gather(*flood, other))
    assert most == {"a": 2, "b": 1}
    assert limiter._slots == {}  # nothing kept for keys without requests


async def test_a_request_that_waits_too_long_is_refused() -> None:
    limiter = InFlight(1, wait_s=0.05)
    async with limiter.slot("a") as first:
        assert first
        async with limiter.slot("a") as second:
            assert second is False
        async with limiter.slot("b") as other:
            assert other


def test_webhook_addresses_and_sessions_are_the_keys() -> None:
    middleware = FairShare(
        app=None,  # type: ignore[arg-type]
        api=InFlight(4, 1),
        webhooks=InFlight(8, 1),
        retry_status={"mailchimp": 503, "brevo": 429},
        tenant_of=lambda scope, token: 7 if token == "good" else None,
    )

    def key(path: str, method: str = "POST", auth: str | None = None) -> tuple[Any, int]:
        headers = [(b"authorization", auth.encode())] if auth else []
        scope = {"type": "http", "path": path, "method": method, "headers": headers}
        found, _limiter, status = middleware._key(scope)
        return found, status

    assert key("/webhooks/mailchimp/tok") == (("hook", "mailchimp", "tok"), 503)
    assert key("/webhooks/brevo/tok") == (("hook", "brevo", "tok"), 429)
    assert key("/webhooks/mailchimp/tok", method="GET")[0] is None  # the URL check
    assert key("/api/v1/status", "GET", "Bearer good") == (("tenant", 7), 429)
    assert key("/api/v1/status", "GET", "Bearer forged")[0] is None  # the route says 401
    assert key("/api/v1/sessions", "POST", "Bearer good")[0] is None
    assert key("/", "GET")[0] is None


async def test_a_tenant_over_its_share_waits_and_another_is_served(settings: Settings) -> None:
    async with open_world(settings, API_CONCURRENCY_PER_TENANT=1, FAIR_SHARE_WAIT_S=0.3) as world:
        token_a, _path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        t_b = tenant(2)
        await world.activate(t_b)
        token_b = await world.session(t_b)
        world.brevo.config.latency = 2.0  # A's status call waits for Brevo's live count

        async def while_a_waits(method: str, token: str) -> Any:
            await asyncio.sleep(0.5)
            return await world.client.request(method, "/api/v1/session", headers=bearer(token))

        slow, a_again, b = await asyncio.gather(
            world.client.get("/api/v1/status", headers=bearer(token_a)),
            while_a_waits("GET", token_a),
            while_a_waits("GET", token_b),
        )
        assert slow.status_code == 200
        assert a_again.status_code == 429 and a_again.headers["retry-after"] == "1"
        assert a_again.json()["error"] == "too_many_requests"
        assert b.status_code == 200
