"""Webhook ingest's group commit and connection cache: concurrent deliveries share one
transaction (all stored or none), and a token replaced or removed by saving the connection is
refused at once although the lookup is cached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.engine import create_engine
from app.db.migrate import migrate
from app.db.models import Connection
from app.resources import Resources, create_resources
from app.webhooks.service import webhook as webhook_service
from providers.base import ProviderEvent
from tests.security.conftest import (
    BREVO_KEYS,
    World,
    bearer,
    count_events,
    fetch_all,
    open_world,
)
from tests.security.test_webhook_intake import brevo_event, post_brevo

POISON = "poison@example.de"


@pytest.fixture
async def refuse_poison(engine: AsyncEngine) -> AsyncIterator[None]:
    """The database refuses any event row of POISON (a failing INSERT mid-group)."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "ALTER TABLE inbound_event ADD CONSTRAINT refuse_poison "
                f"CHECK ((payload->>'email') IS DISTINCT FROM '{POISON}') NOT VALID"
            )
        )
    yield
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE inbound_event DROP CONSTRAINT refuse_poison"))


@pytest.fixture
async def resources(world: World) -> AsyncIterator[Resources]:
    res = await create_resources(world.settings)
    yield res
    await res.aclose()


async def stored_emails(engine: AsyncEngine) -> list[str]:
    rows = await fetch_all(engine, "SELECT payload->>'email' AS email FROM inbound_event")
    return sorted(str(r["email"]) for r in rows)


def events(connection: Connection, email: str) -> list[ProviderEvent]:
    return webhook_service.parse(connection, brevo_event(email))


class TestGroupCommit:
    async def test_a_failed_insert_fails_only_its_own_delivery(
        self, world: World, engine: AsyncEngine, resources: Resources, refuse_poison: None
    ) -> None:
        _, path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        connection = await webhook_service.cached_connection(
            resources, "brevo", path.rsplit("/", 1)[1]
        )

        async def deliver(email: str) -> int | BaseException:
            try:
                return await webhook_service.store(
                    resources, "brevo", connection, events(connection, email)
                )
            except Exception as exc:
                return exc

        assert await deliver("a@example.de") == 1  # a group of its own, committed
        # Concurrent deliveries form one group, which holds the refused row: the group's
        # statement stores nothing, then each delivery is written alone, so only the refused
        # one gets the error (the API answers it with a retry) and its neighbours are stored.
        emails = ["b@example.de", POISON, "c@example.de", "b@example.de"]
        results = await asyncio.gather(*(deliver(e) for e in emails))
        assert isinstance(results[1], Exception), results
        assert [results[0], results[2], results[3]] == [1, 1, 0], results
        assert await stored_emails(engine) == ["a@example.de", "b@example.de", "c@example.de"]
        assert await deliver("d@example.de") == 1  # the writer goes on after a failed group
        assert await stored_emails(engine) == [
            "a@example.de",
            "b@example.de",
            "c@example.de",
            "d@example.de",
        ]

    async def test_deliveries_of_one_group_count_a_shared_event_once(
        self, world: World, engine: AsyncEngine, resources: Resources
    ) -> None:
        _, path, _secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        connection = await webhook_service.cached_connection(
            resources, "brevo", path.rsplit("/", 1)[1]
        )
        emails = ["a@example.de", "b@example.de", "c@example.de", "b@example.de", "a@example.de"]
        results = await asyncio.gather(
            *(
                webhook_service.store(resources, "brevo", connection, events(connection, e))
                for e in emails
            )
        )
        # One group: the first delivery of an event stores it, a later one is a duplicate.
        assert results == [1, 1, 1, 0, 0]
        assert await stored_emails(engine) == ["a@example.de", "b@example.de", "c@example.de"]

    async def test_concurrent_http_deliveries_are_stored_exactly_when_acknowledged(
        self, world: World, engine: AsyncEngine, refuse_poison: None
    ) -> None:
        _, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        warm = await post_brevo(world, path, secret, brevo_event("warm@example.de"))
        assert warm.status_code == 200
        emails = [f"u{i}@example.de" for i in range(12)]
        emails.insert(6, POISON)
        responses = await asyncio.gather(
            *(post_brevo(world, path, secret, brevo_event(e)) for e in emails)
        )
        by_email = dict(zip(emails, responses, strict=True))
        assert by_email[POISON].status_code == 429
        assert by_email[POISON].headers["retry-after"]
        acknowledged = {e for e, r in by_email.items() if r.status_code == 200}
        assert all(by_email[e].json()["stored"] == 1 for e in acknowledged)
        assert all(r.status_code in (200, 429) for r in responses)
        assert await stored_emails(engine) == sorted(acknowledged | {"warm@example.de"})


class TestCachedConnection:
    async def test_a_replaced_token_is_refused_at_once(
        self, world: World, engine: AsyncEngine
    ) -> None:
        session, old_path, old_secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        first = await post_brevo(world, old_path, old_secret, brevo_event("a@example.de"))
        assert first.status_code == 200  # the old token is now in the cache
        # Another account: a fresh token and secret (a save keeping the account keeps them).
        new_path, new_secret = await world.connect_brevo(session, BREVO_KEYS[1])
        assert new_path != old_path and new_secret != old_secret

        old = await post_brevo(world, old_path, old_secret, brevo_event("b@example.de"))
        assert old.status_code == 404, old.text
        wrong = await post_brevo(world, new_path, old_secret, brevo_event("c@example.de"))
        assert wrong.status_code == 401
        new = await post_brevo(world, new_path, new_secret, brevo_event("d@example.de"))
        assert new.status_code == 200 and new.json()["stored"] == 1
        assert await stored_emails(engine) == ["a@example.de", "d@example.de"]

    async def test_a_removed_connection_is_refused_at_once(
        self, world: World, engine: AsyncEngine
    ) -> None:
        session, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
        assert (await post_brevo(world, path, secret, brevo_event())).status_code == 200
        removed = await world.client.delete("/api/v1/connection", headers=bearer(session))
        assert removed.status_code in (200, 204), removed.text
        response = await post_brevo(world, path, secret, brevo_event("b@example.de"))
        assert response.status_code == 404
        assert await count_events(engine) == 1


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
    migrate(url)  # runs its own event loop, hence a sync fixture
    return url


async def test_the_same_on_sqlite(settings: Settings, sqlite_url: str) -> None:
    """The embedded mode's path (a check, then one INSERT): grouped, deduplicated, checked."""
    engine = create_engine(sqlite_url)
    try:
        async with open_world(settings, DATABASE_URL=sqlite_url) as world:
            session, path, secret = await world.tenant_with_brevo(1, BREVO_KEYS[0])
            emails = ["a@example.de", "b@example.de", "a@example.de", "c@example.de"]
            responses = await asyncio.gather(
                *(post_brevo(world, path, secret, brevo_event(e)) for e in emails)
            )
            assert sorted(r.json()["stored"] for r in responses) == [0, 1, 1, 1]
            new_path, new_secret = await world.connect_brevo(session, BREVO_KEYS[1])
            old = await post_brevo(world, path, secret, brevo_event("d@example.de"))
            assert old.status_code == 404
            new = await post_brevo(world, new_path, new_secret, brevo_event("e@example.de"))
            assert new.json()["stored"] == 1
        emails_stored = await stored_emails(engine)
        assert emails_stored == ["a@example.de", "b@example.de", "c@example.de", "e@example.de"]
    finally:
        await engine.dispose()


async def test_a_groups_drains_are_kicked_together_each_once(engine: AsyncEngine) -> None:
    """After a group for many tenants commits, their drains are started side by side (one
    after another, 200 tenants' last drain started about a second late), and a failing kick
    does not keep the others from starting."""
    from app.inbox.writer import KICK_CONCURRENCY, IngestWriter

    kicked: list[int] = []
    in_flight = peak = 0

    async def kick(connection_id: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)  # a Redis round trip
        in_flight -= 1
        if connection_id == 7:
            raise RuntimeError("Redis is gone")
        kicked.append(connection_id)

    writer = IngestWriter(engine, kick)
    await writer._kick_all(list(range(1, 101)))
    assert sorted(kicked) == [c for c in range(1, 101) if c != 7]
    assert peak == KICK_CONCURRENCY
