"""Incremental sync, onOffice → provider: polling and onOffice's "address saved" webhook."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db.engine import create_engine
from app.db.models import Connection, InboundEvent
from emulators.mailchimp import DEFAULT_API_KEY, subscriber_hash
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    signed_query,
    start_connector,
)
from tests.e2e.test_webhooks import address, eventually, fired_at


@dataclass
class Synced:
    connector: Connector
    token: str
    list_id: str
    tenant: Tenant


@pytest.fixture
async def synced(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient, database_url: str
) -> AsyncIterator[Synced]:
    world.onoffice.seed(
        [
            address(1, "anna@example.de", NewsletterTag="|Kaeufer|"),
            address(2, "bob@example.de"),
            address(3, "carl@example.de", newsletter="0"),
        ]
    )
    connector = start_connector(e2e_settings)
    tenant = Tenant("I1", "j" * 32, "k" * 64, "claim-i")
    token, saved = await connect_tenant(
        http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
    )
    run = await run_full_sync(http, connector, token)
    assert run["status"] == "completed", run
    # The first poll only sets the watermark.
    await http.post(f"{connector.url}/api/v1/changes/poll", headers=auth(token))
    engine = create_engine(database_url)

    async def has_watermark() -> bool:
        async with engine.connect() as conn:
            return (await conn.scalar(select(Connection.onoffice_watermark))) is not None

    deadline = time.monotonic() + 20
    while not await has_watermark():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await engine.dispose()
    yield Synced(connector, token, saved["list_id"], tenant)
    connector.stop()


async def watermark(database_url: str) -> Any:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        value = await conn.scalar(select(Connection.onoffice_watermark))
    await engine.dispose()
    return value


async def onoffice_events(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(InboundEvent.status).where(InboundEvent.source == "onoffice")
        )
        statuses = [str(r[0]) for r in rows]
    await engine.dispose()
    return statuses


async def address_saved(http: httpx.AsyncClient, synced: Synced, record_id: int) -> httpx.Response:
    """onOffice's signed "address saved" webhook for one address."""
    params = {
        "customerWebId": synced.tenant.web_id,
        "apiClaim": synced.tenant.claim,
        "userId": "17",
        "timestamp": str(int(time.time())),
        "recordId": str(record_id),
    }
    query = signed_query(synced.connector.url, "/onoffice/webhook", params)
    return await http.get(f"{synced.connector.url}/onoffice/webhook", params=query)


async def onoffice_events_applied(database_url: str) -> None:
    """Wait until the one stored onOffice event is applied."""
    deadline = time.monotonic() + 20
    while await onoffice_events(database_url) != ["applied"]:
        assert time.monotonic() < deadline, await onoffice_events(database_url)
        await asyncio.sleep(0.1)


async def unsubscribe_at_mailchimp(
    http: httpx.AsyncClient, world: World, synced: Synced, email: str
) -> httpx.Response:
    """The person unsubscribes at Mailchimp, and Mailchimp's webhook for it reaches the
    connection's webhook address."""
    world.mailchimp.member_action(synced.list_id, email, "unsubscribe")
    (hook,) = world.mailchimp.lists[synced.list_id].webhooks.values()
    form = {
        "type": "unsubscribe",
        "fired_at": fired_at(),
        "data[email]": email,
        "data[action]": "unsub",
    }
    return await http.post(hook["url"], data=form)


def member(world: World, list_id: str, email: str) -> Any:
    return world.mailchimp.lists[list_id].members.get(subscriber_hash(email))


def writes(world: World) -> int:
    return sum(n for k, n in world.mailchimp.request_counts.items() if not k.startswith("GET"))


class TestPolling:
    async def test_changes_in_onoffice_reach_mailchimp(
        self, world: World, synced: Synced, http: httpx.AsyncClient, database_url: str
    ) -> None:
        world.onoffice.seed(
            [
                address(1, "anna@example.de", Name="Neumann", NewsletterTag="|Mieter|"),
                address(2, "bob@example.de", newsletter="0"),
                address(3, "carl@example.de", newsletter="1"),
            ],
            replace=False,
        )
        poll = await http.post(
            f"{synced.connector.url}/api/v1/changes/poll", headers=auth(synced.token)
        )
        assert poll.status_code == 202

        def applied() -> bool:
            anna = member(world, synced.list_id, "anna@example.de")
            bob = member(world, synced.list_id, "bob@example.de")
            carl = member(world, synced.list_id, "carl@example.de")
            return (
                anna is not None
                and anna.merge_fields.get("LNAME") == "Neumann"
                and set(anna.tags) == {"Mieter"}
                and bob is not None
                and bob.status == "unsubscribed"
                and carl is not None
                and carl.status == "subscribed"
            )

        await eventually(applied, "the changes at Mailchimp")
        # Nothing changed since: another poll sends nothing.
        before = writes(world)
        mark = await watermark(database_url)
        await http.post(f"{synced.connector.url}/api/v1/changes/poll", headers=auth(synced.token))
        deadline = time.monotonic() + 20
        while await watermark(database_url) == mark:
            assert time.monotonic() < deadline, "the poll did not finish"
            await asyncio.sleep(0.1)
        assert writes(world) == before

    async def test_an_email_change_moves_the_provider_contact(
        self, world: World, synced: Synced, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed(
            [address(1, "anna.neu@example.de", NewsletterTag="|Kaeufer|")], replace=False
        )
        await http.post(f"{synced.connector.url}/api/v1/changes/poll", headers=auth(synced.token))

        def moved() -> bool:
            new = member(world, synced.list_id, "anna.neu@example.de")
            return new is not None and member(world, synced.list_id, "anna@example.de") is None

        await eventually(moved, "the email change")
        assert member(world, synced.list_id, "anna.neu@example.de").status == "subscribed"


class TestAddressSavedWebhook:
    async def test_the_saved_address_is_pushed(
        self, world: World, synced: Synced, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(2, "bob@example.de", newsletter="0")], replace=False)
        response = await address_saved(http, synced, 2)
        assert response.status_code == 200, response.text
        await eventually(
            lambda: member(world, synced.list_id, "bob@example.de").status == "unsubscribed",
            "bob's unsubscribe",
        )

    async def test_no_echo_after_a_provider_unsubscribe(
        self, world: World, synced: Synced, http: httpx.AsyncClient, database_url: str
    ) -> None:
        assert (
            await unsubscribe_at_mailchimp(http, world, synced, "anna@example.de")
        ).status_code == 200
        await eventually(
            lambda: str(world.onoffice.addresses[1].to_dict()["newsletter_aktiv"]) == "0",
            "the unsubscribe in onOffice",
        )
        before = writes(world)
        # onOffice reports the address as saved (by the connector itself): nothing goes back.
        assert (await address_saved(http, synced, 1)).is_success
        await onoffice_events_applied(database_url)
        assert writes(world) == before


class TestDuplicatesSinceTheFullSync:
    async def test_a_new_duplicate_with_a_stray_space_gets_the_unsubscribe_too(
        self, world: World, synced: Synced, http: httpx.AsyncClient, database_url: str
    ) -> None:
        # After the full sync an agent creates a second address for anna; its email has a
        # leading space, which onOffice's email lookup does not match.
        world.onoffice.seed([address(7, " anna@example.de")], replace=False)
        assert world.onoffice.addresses[7].emails == [" anna@example.de"]
        assert (await address_saved(http, synced, 7)).is_success
        await onoffice_events_applied(database_url)
        # anna unsubscribes at Mailchimp: both of her addresses say No.
        assert (
            await unsubscribe_at_mailchimp(http, world, synced, "anna@example.de")
        ).status_code == 200

        def both_no() -> bool:
            return all(
                str(world.onoffice.addresses[i].to_dict()["newsletter_aktiv"]) == "0"
                for i in (1, 7)
            )

        await eventually(both_no, "the unsubscribe on both addresses")
        assert str(world.onoffice.addresses[2].to_dict()["newsletter_aktiv"]) == "1"


class TestBrevo:
    async def test_no_in_onoffice_blacklists_at_brevo(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient, database_url: str
    ) -> None:
        world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
        connector = start_connector(e2e_settings)
        try:
            tenant = Tenant("I2", "m" * 32, "n" * 64, "claim-m")
            token, _ = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "brevo", "test-key-en"
            )
            run = await run_full_sync(http, connector, token)
            assert run["status"] == "completed", run
            await http.post(f"{connector.url}/api/v1/changes/poll", headers=auth(token))
            deadline = time.monotonic() + 20
            while await watermark(database_url) is None:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            world.onoffice.seed(
                [address(2, "bob@example.de", newsletter="2", Vorname="Robert")], replace=False
            )
            world.onoffice.seed([address(1, "anna@example.de", Vorname="Annika")], replace=False)
            await http.post(f"{connector.url}/api/v1/changes/poll", headers=auth(token))
            contacts = world.brevo.accounts["test-key-en"].contacts
            await eventually(lambda: contacts["bob@example.de"].blacklisted, "bob blacklisted")
            await eventually(
                lambda: contacts["anna@example.de"].attributes.get("FIRSTNAME") == "Annika",
                "anna's new first name",
            )
            assert not contacts["anna@example.de"].blacklisted
        finally:
            connector.stop()
