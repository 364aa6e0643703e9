"""Two customers connect Mailchimp with keys of two different Mailchimp accounts: each gets its
own audience "onoffice" in its own account, a full sync puts only its own addresses there, and
a webhook from one account's audience reaches only that customer's onOffice addresses (a
connection touches only its own scope), even for an email both customers have."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_ACCOUNT_ID, DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    start_connector,
)
from tests.e2e.test_webhooks import (
    activities,
    address,
    at_mailchimp,
    eventually,
    mailchimp_form,
    newsletter,
)

OTHER_KEY = "fedcba9876543210fedcba9876543210-us1"
OTHER_ACCOUNT = "b7c8d9e0f1a2b3c4d5e6f7a8b"
SHARED = "shared@example.de"  # an address in both customers' onOffice


@dataclass
class Side:
    token: str
    list_id: str
    hook_url: str


@dataclass
class Two:
    connector: Connector
    a: Side
    b: Side


def book_a() -> list[dict[str, object]]:
    return [
        address(1, "anna@example.de"),
        address(2, SHARED),
        address(3, "carl@example.de", newsletter="0"),
    ]


def book_b() -> list[dict[str, object]]:
    return [
        address(101, "bea@example.de"),
        address(102, SHARED),
        address(103, "dora@example.de"),
    ]


def audience(world: World, list_id: str) -> dict[str, str]:
    return {m.email: m.status for m in world.mailchimp.lists[list_id].members.values()}


async def connect(
    http: httpx.AsyncClient, world: World, connector: Connector, tenant: Tenant, key: str
) -> Side:
    token, saved = await connect_tenant(
        http, connector, world.onoffice_url, tenant, "mailchimp", key
    )
    (hook,) = world.mailchimp.lists[saved["list_id"]].webhooks.values()
    return Side(token, saved["list_id"], hook["url"])


@pytest.fixture
async def two(world: World, e2e_settings: Settings, http: httpx.AsyncClient) -> AsyncIterator[Two]:
    world.mailchimp.add_account(OTHER_KEY, account_id=OTHER_ACCOUNT, name="Zweite Makler GmbH")
    world.onoffice.seed(book_a() + book_b())
    connector = start_connector(e2e_settings)
    try:
        tenant_a = Tenant("A1", "a" * 32, "b" * 64, "claim-a", address_range=(1, 99))
        tenant_b = Tenant("B1", "c" * 32, "d" * 64, "claim-b", address_range=(100, 199))
        a = await connect(http, world, connector, tenant_a, DEFAULT_API_KEY)
        b = await connect(http, world, connector, tenant_b, OTHER_KEY)
        yield Two(connector, a, b)
    finally:
        connector.stop()


async def test_each_customer_gets_its_own_audience_and_only_its_own_addresses(
    world: World, two: Two, http: httpx.AsyncClient
) -> None:
    lists = world.mailchimp.lists
    assert two.a.list_id != two.b.list_id
    assert (lists[two.a.list_id].name, lists[two.b.list_id].name) == ("onoffice", "onoffice")
    assert lists[two.a.list_id].account_id == DEFAULT_ACCOUNT_ID
    assert lists[two.b.list_id].account_id == OTHER_ACCOUNT

    for side in (two.a, two.b):
        run = await run_full_sync(http, two.connector, side.token)
        assert run["status"] == "completed", run
    assert audience(world, two.a.list_id) == {"anna@example.de": "subscribed", SHARED: "subscribed"}
    assert audience(world, two.b.list_id) == {
        "bea@example.de": "subscribed",
        SHARED: "subscribed",
        "dora@example.de": "subscribed",
    }
    # Each connection shows its own Mailchimp account and audience.
    for side, name in ((two.a, "Musterhaus Immobilien GmbH"), (two.b, "Zweite Makler GmbH")):
        url = f"{two.connector.url}/api/v1/connection"
        connection = (await http.get(url, headers=auth(side.token))).json()
        assert (connection["account_name"], connection["list_id"]) == (name, side.list_id)


async def test_a_webhook_reaches_only_its_customers_onoffice(
    world: World, two: Two, http: httpx.AsyncClient
) -> None:
    for side in (two.a, two.b):
        run = await run_full_sync(http, two.connector, side.token)
        assert run["status"] == "completed", run

    # The shared address unsubscribes from customer A's audience (account A) only.
    at_mailchimp(world, two.a.list_id, SHARED, "unsubscribe")
    form = mailchimp_form("unsubscribe", SHARED, action="unsub", list_id=two.a.list_id)
    stored = await http.post(two.a.hook_url, data=form)
    assert stored.status_code == 200 and stored.json()["stored"] == 1, stored.text
    await eventually(lambda: newsletter(world, 2) == "0", "A's unsubscribe")
    await eventually(lambda: len(activities(world, 2)) == 1, "A's activity")

    # Customer B (another Mailchimp account, the same email) is untouched.
    await asyncio.sleep(1.0)
    assert newsletter(world, 102) == "1" and activities(world, 102) == []
    assert audience(world, two.b.list_id)[SHARED] == "subscribed"

    # And the other way round: B's audience's news reaches B's address only.
    at_mailchimp(world, two.b.list_id, "dora@example.de", "unsubscribe")
    form = mailchimp_form("unsubscribe", "dora@example.de", action="unsub", list_id=two.b.list_id)
    assert (await http.post(two.b.hook_url, data=form)).json()["stored"] == 1
    await eventually(lambda: newsletter(world, 103) == "0", "B's unsubscribe")
    assert newsletter(world, 1) == "1" and activities(world, 1) == []
    assert newsletter(world, 102) == "1"
