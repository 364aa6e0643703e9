"""Provider webhook intake (issue 9): token first, bounded bodies, a separate hashed Brevo
secret, dedupe per connection, malformed input answered 4xx, the provider's "deliver again"
status (Brevo 429, Mailchimp 503) when an event cannot be stored, and routes built per provider
from its `WebhookDelivery`."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.connections.factory import provider_label, webhook_deliveries
from app.crypto import hash_token
from app.main import create_app
from tests.security.conftest import BREVO_KEYS, World, bearer, count_events, fetch_all

JSON = {"Content-Type": "application/json"}


def brevo_event(email: str = "anna@example.de", **extra: Any) -> dict[str, Any]:
    return {"event": "unsubscribed", "email": email, "ts_event": 1795770000, **extra}


async def post_brevo(
    world: World, path: str, secret: str | None, body: Any, **headers: str
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {**JSON, **headers}
    if secret is not None:
        sent["Authorization"] = f"Bearer {secret}"
    return await world.client.post(path, content=content, headers=sent)


class TestTokenFirst:
    async def test_unknown_token_is_404_before_a_huge_body_is_read(
        self, world: World, engine: AsyncEngine
    ) -> None:
        large = b"[" + b'{"a":1},' * 200_000 + b"{}]"  # ~1.6 MB, under the body cap
        started = time.perf_counter()
        response = await post_brevo(world, "/webhooks/brevo/nope", "x", large)
        assert response.status_code == 404
        huge = b"[" + b'{"a":1},' * 2_000_000 + b"{}]"  # ~16 MB: refused by its length alone
        response = await post_brevo(world, "/webhooks/brevo/nope", "x", huge)
        assert response.status_code == 413
        assert time.perf_counter() - started < 1.0
        assert await count_events(engine) == 0

    async def test_wrong_bearer_is_401_before_the_body_is_parsed(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        deep = b"[" * 100_000 + b"]" * 100_000
        assert (await post_brevo(world, path, "wrong", deep)).status_code == 401
        assert await count_events(engine) == 0


class TestBodyLimits:
    async def test_oversized_body_is_413_by_content_length_and_by_stream(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        limit = world.settings.WEBHOOK_MAX_BODY_BYTES
        big = json.dumps([brevo_event(f"u{i}@example.de") for i in range(limit // 60)]).encode()
        assert len(big) > limit
        assert (await post_brevo(world, path, secret, big)).status_code == 413

        async def chunks() -> Any:  # no Content-Length: the stream is cut at the limit
            for _ in range(limit // 65536 + 2):
                yield b" " * 65536

        streamed = await world.client.post(
            path, content=chunks(), headers={**JSON, **bearer(secret)}
        )
        assert streamed.status_code == 413
        assert await count_events(engine) == 0

    async def test_deeply_nested_json_is_400_not_500(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        for depth in (100_000, 40):
            body = b"[" * depth + b"]" * depth
            response = await post_brevo(world, path, secret, body)
            assert response.status_code == 400, (depth, response.text)
        assert await count_events(engine) == 0

    async def test_more_events_than_the_maximum_is_413(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        maximum = world.settings.WEBHOOK_MAX_EVENTS
        too_many = [
            brevo_event(f"u{i}@example.de", ts_event=1795770000 + i) for i in range(maximum + 1)
        ]
        assert (await post_brevo(world, path, secret, too_many)).status_code == 413
        assert await count_events(engine) == 0
        batch = too_many[:500]  # Brevo's documented batch size is stored in one go
        response = await post_brevo(world, path, secret, batch)
        assert response.status_code == 200 and response.json()["stored"] == 500


class TestBrevoSecret:
    async def test_the_secret_is_separate_required_and_both_are_stored_hashed(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        url_token = path.rsplit("/", 1)[1]
        assert secret != url_token
        assert (await post_brevo(world, path, None, brevo_event())).status_code == 401
        assert (await post_brevo(world, path, url_token, brevo_event())).status_code == 401
        assert (await post_brevo(world, path, secret, brevo_event())).status_code == 200
        (row,) = await fetch_all(
            engine, "SELECT webhook_token, webhook_secret_hash FROM connection"
        )
        assert row == {
            "webhook_token": hash_token(url_token),
            "webhook_secret_hash": hash_token(secret),
        }

    async def test_non_ascii_authorization_is_401_not_500(self, world: World) -> None:
        _, path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        response = await world.client.post(
            path,
            content=json.dumps(brevo_event()).encode(),
            headers=[
                (b"content-type", b"application/json"),
                (b"authorization", "Bearer geheim-äöü-€".encode()),
            ],
        )
        assert response.status_code == 401


class TestDedupePerConnection:
    async def test_one_tenant_cannot_preempt_another_tenants_event(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path_a, secret_a = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        _, path_b, secret_b = await world.tenant_with_brevo(2, BREVO_KEYS[1])
        event = brevo_event()  # no list_id: accepted by both connections
        first = await post_brevo(world, path_a, secret_a, event)
        assert first.json()["stored"] == 1
        again = await post_brevo(world, path_a, secret_a, event)
        assert again.json()["stored"] == 0  # a redelivery to the same connection
        other = await post_brevo(world, path_b, secret_b, event)
        assert other.json()["stored"] == 1
        rows = await fetch_all(engine, "SELECT DISTINCT connection_id FROM inbound_event")
        assert len(rows) == 2


class TestInputsThatWere500:
    async def test_brevo_event_times_out_of_range_are_400(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        bodies: list[bytes] = [
            json.dumps(brevo_event(ts_event=1e300)).encode(),
            b'{"event": "unsubscribed", "email": "a@example.de", "ts_event": Infinity}',
            b'{"event": "unsubscribed", "email": "a@example.de", "ts": NaN}',
            json.dumps(brevo_event(ts_event="12345678901234567890")).encode(),
            json.dumps(brevo_event(ts_event=-1e12)).encode(),
        ]
        for body in bodies:
            response = await post_brevo(world, path, secret, body)
            assert response.status_code == 400, (body, response.text)
        assert await count_events(engine) == 0

    async def test_mailchimp_form_keys_nested_5000_deep_are_400(
        self, world: World, engine: AsyncEngine
    ) -> None:
        token = await mailchimp_connection(engine, world)
        key = "data" + "[x]" * 5000
        response = await world.client.post(
            f"/webhooks/mailchimp/{token}",
            content=f"type=profile&data[email]=a%40example.de&{key}=1".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 400, response.text
        assert await count_events(engine) == 0

    async def test_record_id_of_non_ascii_digits_is_400(self, world: World) -> None:
        from tests.security.conftest import signed_query, tenant

        t = tenant(1)
        await world.activate(t)
        for record_id in ("²", "١٢", "9" * 30):
            query = signed_query(
                "/onoffice/webhook",
                {
                    "customerWebId": t.web_id,
                    "userId": "17",
                    "apiClaim": t.claim,
                    "recordId": record_id,
                },
            )
            response = await world.client.get(f"/onoffice/webhook?{query}")
            assert response.status_code == 400, (record_id, response.text)


class TestBrevoRetries:
    async def test_an_event_that_cannot_be_stored_is_answered_429(
        self, world: World, engine: AsyncEngine
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        async with engine.begin() as conn:  # the database refuses every new event
            await conn.execute(
                text("ALTER TABLE inbound_event ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
            )
        try:
            response = await post_brevo(world, path, secret, brevo_event())
        finally:
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE inbound_event DROP CONSTRAINT refuse_all"))
        assert response.status_code == 429, response.text
        assert response.headers["retry-after"]
        again = await post_brevo(world, path, secret, brevo_event())
        assert again.status_code == 200 and again.json()["stored"] == 1


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MAILCHIMP_UNSUBSCRIBE = (
    b"type=unsubscribe&fired_at=2026-11-30+10%3A00%3A00&data[action]=unsub"
    b"&data[email]=anna%40example.de&data[list_id]=l1"
)


class TestMailchimpDeliveries:
    async def test_the_url_check_is_answered_for_any_token_and_an_empty_post_stores_nothing(
        self, world: World, engine: AsyncEngine
    ) -> None:
        check = await world.client.get("/webhooks/mailchimp/not-a-token")
        assert check.status_code == 200 and check.json() == {"status": "ok"}
        token = await mailchimp_connection(engine, world)
        empty = await world.client.post(f"/webhooks/mailchimp/{token}")  # no content type
        assert empty.status_code == 200 and empty.json() == {"status": "accepted", "stored": 0}
        # The POST is not answered for any token: the address must exist.
        assert (await world.client.post("/webhooks/mailchimp/not-a-token")).status_code == 404
        wrong_type = await world.client.post(
            f"/webhooks/mailchimp/{token}", content=MAILCHIMP_UNSUBSCRIBE, headers=JSON
        )
        assert wrong_type.status_code == 415, wrong_type.text
        assert await count_events(engine) == 0

    async def test_an_event_that_cannot_be_stored_is_answered_503_and_taken_again(
        self, world: World, engine: AsyncEngine
    ) -> None:
        token = await mailchimp_connection(engine, world)
        path = f"/webhooks/mailchimp/{token}"
        async with engine.begin() as conn:
            await conn.execute(
                text("ALTER TABLE inbound_event ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
            )
        try:
            refused = await world.client.post(path, content=MAILCHIMP_UNSUBSCRIBE, headers=FORM)
        finally:
            async with engine.begin() as conn:
                await conn.execute(text("ALTER TABLE inbound_event DROP CONSTRAINT refuse_all"))
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"]
        again = await world.client.post(path, content=MAILCHIMP_UNSUBSCRIBE, headers=FORM)
        assert again.status_code == 200 and again.json()["stored"] == 1
        (row,) = await fetch_all(engine, "SELECT source, payload FROM inbound_event")
        assert row["source"] == "mailchimp"
        payload = row["payload"] if isinstance(row["payload"], dict) else json.loads(row["payload"])
        assert payload["type"] == "unsubscribe" and payload["email"] == "anna@example.de"

    async def test_a_form_without_a_type_is_400_and_names_the_provider(
        self, world: World, engine: AsyncEngine
    ) -> None:
        token = await mailchimp_connection(engine, world)
        response = await world.client.post(
            f"/webhooks/mailchimp/{token}", content=b"data[email]=a%40example.de", headers=FORM
        )
        assert response.status_code == 400
        assert "malformed Mailchimp webhook: no `type`" in response.text


def test_every_provider_has_its_webhook_route_documented_from_its_delivery() -> None:
    spec = create_app().openapi()
    deliveries = webhook_deliveries()
    assert set(deliveries) == {"mailchimp", "brevo"}
    for provider, delivery in deliveries.items():
        path = spec["paths"][f"/webhooks/{provider}/{{token}}"]
        post = path["post"]
        assert str(delivery.retry_status) in post["responses"], provider
        assert (
            provider_label(provider) in post["responses"][str(delivery.retry_status)]["description"]
        )
        assert list(post["requestBody"]["content"]) == [delivery.content_type]
        headers = [p["name"] for p in post["parameters"] if p["in"] == "header"]
        assert headers == (["authorization"] if delivery.bearer_secret else []), provider
        assert ("401" in post["responses"]) == delivery.bearer_secret, provider
        assert ("get" in path) == delivery.url_check, provider
        assert post["operationId"] == f"{provider}_events_webhooks_{provider}__token__post"


async def mailchimp_connection(engine: AsyncEngine, world: World, token: str = "mc-token-1") -> str:
    """A Mailchimp connection row (its webhook URL token hashed, as the service stores it)."""
    async with engine.begin() as conn:
        tenant_id = (
            await conn.execute(
                text(
                    "INSERT INTO tenant (customer_web_id, customer_name, active, created_at, "
                    "updated_at) VALUES ('mc-1', 'MC', true, now(), now()) RETURNING id"
                )
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO connection (tenant_id, group_id, provider, api_key_encrypted, "
                "api_key_hint, account_name, webhook_token, activities, field_mapping, "
                "list_id, created_at, updated_at) VALUES (:t, '', 'mailchimp', 'x', '', '', "
                ":h, '{}', '{}', 'l1', now(), now())"
            ),
            {"t": tenant_id, "h": hash_token(token)},
        )
    return token


class TestWebhookAddressAcrossSaves:
    async def test_saving_again_keeps_the_address_so_events_in_flight_are_taken(
        self, world: World, engine: AsyncEngine
    ) -> None:
        token, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        # The user saves again (e.g. other activity options) while Brevo is still delivering.
        again_path, again_secret = await world.connect_brevo(token, BREVO_KEYS[0])
        assert (again_path, again_secret) == (path, secret)
        assert len(world.brevo.accounts[BREVO_KEYS[0]].webhooks) == 1
        assert (await post_brevo(world, path, secret, brevo_event())).status_code == 200
        assert await count_events(engine) == 1
        (row,) = await fetch_all(engine, "SELECT webhook_credentials_encrypted FROM connection")
        stored = bytes(row["webhook_credentials_encrypted"])
        assert path.rsplit("/", 1)[1].encode() not in stored and secret.encode() not in stored

    async def test_another_account_gets_a_new_address_and_the_old_one_is_refused(
        self, world: World, engine: AsyncEngine
    ) -> None:
        token, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        new_path, new_secret = await world.connect_brevo(token, BREVO_KEYS[1])
        assert new_path != path and new_secret != secret
        assert world.brevo.accounts[BREVO_KEYS[0]].webhooks == {}
        assert (await post_brevo(world, path, secret, brevo_event())).status_code == 404
        assert (await post_brevo(world, new_path, new_secret, brevo_event())).status_code == 200
        assert await count_events(engine) == 1
