"""Malformed provider webhook deliveries (issue 9): wrong content type, invalid UTF-8, huge,
deeply nested, 10,000 events, missing fields, random bytes. Each gets a 4xx, nothing is
stored, and the service keeps answering."""

from __future__ import annotations

import json
import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.security.conftest import BREVO_KEYS, World, count_events
from tests.security.test_webhook_intake import mailchimp_connection

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def event(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "event": "unsubscribed",
        "email": f"u{i}@example.de",
        "ts_event": 1795770000 + i,
        **extra,
    }


def brevo_cases(limit: int) -> list[tuple[str, str, bytes]]:
    valid = json.dumps(event()).encode()
    return [
        ("wrong content type", "text/plain", valid),
        ("form instead of JSON", FORM, b"event=unsubscribed&email=a%40example.de"),
        ("no content type", "", valid),
        ("invalid UTF-8", JSON, b'{"event": "unsubscribed", "email": "\xff\xfe@example.de"}'),
        ("UTF-16", JSON, valid.decode().encode("utf-16")),
        ("not JSON", JSON, b"{not json"),
        ("truncated", JSON, valid[:-3]),
        ("empty body", JSON, b""),
        ("huge", JSON, b'["' + b"x" * (limit + 10) + b'"]'),
        ("deeply nested", JSON, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        ("nested arrays", JSON, b"[" * 5_000 + b"]" * 5_000),
        ("10,000 events", JSON, json.dumps([event(i) for i in range(10_000)]).encode()),
        ("scalar", JSON, b"42"),
        ("string", JSON, b'"unsubscribed"'),
        ("array of scalars", JSON, b"[1, 2, 3]"),
        ("missing email", JSON, json.dumps({"event": "unsubscribed"}).encode()),
        ("missing event name", JSON, json.dumps([{"email": ""}, {"x": 1}]).encode()),
        ("email not a string", JSON, json.dumps({"event": "spam", "email": None}).encode()),
        ("NaN time", JSON, b'{"event": "unsubscribed", "email": "a@example.de", "ts": NaN}'),
        ("huge time", JSON, json.dumps(event(ts_event=10**30)).encode()),
    ]


def mailchimp_cases(limit: int) -> list[tuple[str, str, bytes]]:
    valid = b"type=unsubscribe&fired_at=2026-11-27+10%3A00%3A00&data%5Bemail%5D=a%40example.de"
    return [
        ("JSON instead of form", JSON, b'{"type": "unsubscribe"}'),
        ("multipart", "multipart/form-data; boundary=x", b"--x--"),
        ("invalid UTF-8", FORM, b"type=unsubscribe&data%5Bemail%5D=\xff%FF"),
        ("huge", FORM, b"type=profile&data[x]=" + b"x" * (limit + 10)),
        ("nested keys", FORM, b"type=profile&data[email]=a%40b.de&data" + b"[a]" * 5_000 + b"=1"),
        ("too many fields", FORM, b"&".join(b"f%d=1" % i for i in range(10_000))),
        ("missing type", FORM, b"data%5Bemail%5D=a%40example.de"),
        ("missing email", FORM, b"type=unsubscribe&fired_at=2026-11-27"),
        ("type only", FORM, b"type=subscribe"),
        ("wrong content type", "text/plain", valid),
    ]


async def test_malformed_deliveries_are_4xx_and_store_nothing(
    world: World, engine: AsyncEngine
) -> None:
    _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
    limit = world.settings.WEBHOOK_MAX_BODY_BYTES
    auth = {"Authorization": f"Bearer {secret}"}
    mailchimp_path = f"/webhooks/mailchimp/{await mailchimp_connection(engine, world)}"
    targets = [(path, auth, c) for c in brevo_cases(limit)]
    targets += [(mailchimp_path, {}, c) for c in mailchimp_cases(limit)]
    for target, headers, (what, content_type, body) in targets:
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        response = await world.client.post(target, content=body, headers=sent)
        assert 400 <= response.status_code < 500, (
            target,
            what,
            response.status_code,
            response.text,
        )
        assert response.headers["content-type"].startswith(JSON), what
    assert await count_events(engine) == 0
    assert (await world.client.get("/healthz")).json() == {"status": "ok"}


async def test_random_bytes_never_give_a_server_error(world: World, engine: AsyncEngine) -> None:
    _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
    mailchimp_path = f"/webhooks/mailchimp/{await mailchimp_connection(engine, world)}"
    rng = random.Random(9)
    alphabet = b'{}[]":,0123456789.eE+-truefalsnul \\x\xff\x00=&%'
    for i in range(300):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        target, content_type = (path, JSON) if i % 2 else (mailchimp_path, FORM)
        response = await world.client.post(
            target,
            content=body,
            headers={"Content-Type": content_type, "Authorization": f"Bearer {secret}"},
        )
        assert response.status_code < 500, (target, body, response.text)
    assert (await world.client.get("/healthz")).status_code == 200
