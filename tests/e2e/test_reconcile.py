"""The periodic reconciliation over HTTP (issue 18, item 2): changes made at the provider that
no webhook told (an unsubscribe through the API, a Brevo blacklist, a removal from the list, a
new sign-up) reach onOffice within one reconciliation; an idle connection costs at most two
provider requests per reconciliation; a rejected key is marked and not retried in a loop.

The connector runs with a real arq worker on Redis and a 2-second interval (allowed under
ENV=testing only; production requires at least 60 s). Nothing here sends a provider webhook.
"""

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
from app.db.models import InboundEvent, ProviderReconcile
from emulators.brevo.state import unlink
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.onoffice.state import Fault as OnOfficeFault
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    start_connector,
)
from tests.e2e.test_webhooks import activities, address, eventually, mailchimp_form, newsletter

INTERVAL_S = 2
BREVO_KEY = "test-key-de"


@dataclass
class Synced:
    connector: Connector
    token: str
    list_id: str


async def rows(database_url: str, stmt: Any) -> list[Any]:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        found = list((await conn.execute(stmt)).all())
    await engine.dispose()
    return found


async def state(database_url: str) -> ProviderReconcile | None:
    found = await rows(database_url, select(ProviderReconcile))
    return found[0] if found else None


async def rounds(database_url: str, count: int, wait_s: float = 30) -> ProviderReconcile:
    """Wait until `count` more reconciliations were recorded; the state after the last one."""
    deadline = time.monotonic() + wait_s
    seen = await state(database_url)
    last = seen.attempted_at if seen else None
    done = 0
    while True:
        now = await state(database_url)
        if now is not None and now.attempted_at != last:
            last, done = now.attempted_at, done + 1
            if done >= count:
                return now
        assert time.monotonic() < deadline, f"{done} of {count} reconciliations in {wait_s} s"
        await asyncio.sleep(0.05)


async def sync(
    http: httpx.AsyncClient,
    world: World,
    settings: Settings,
    provider: str,
    key: str,
) -> Synced:
    connector = start_connector(settings, workers=1)
    try:
        tenant = Tenant("R1", "r" * 32, "s" * 64, "claim-r")
        token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, provider, key
        )
        run = await run_full_sync(http, connector, token)
        assert run["status"] == "completed", run
    except BaseException:
        connector.stop()
        raise
    return Synced(connector, token, str(saved["list_id"]))


@pytest.fixture
def settings(e2e_settings: Settings, redis_url: str) -> Settings:
    return e2e_settings.model_copy(
        update={"REDIS_URL": redis_url, "PROVIDER_RECONCILE_INTERVAL_S": INTERVAL_S}
    )


@pytest.fixture
async def mailchimp(
    world: World, settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Synced]:
    world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
    synced = await sync(http, world, settings, "mailchimp", DEFAULT_API_KEY)
    yield synced
    synced.connector.stop()


@pytest.fixture
async def mailchimp_book(
    world: World, settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Synced]:
    """A larger book: 25 subscribers (more than ARCHIVE_BURST_THRESHOLD)."""
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, 26)])
    synced = await sync(http, world, settings, "mailchimp", DEFAULT_API_KEY)
    yield synced
    synced.connector.stop()


@pytest.fixture
async def brevo_book(
    world: World, settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Synced]:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, 26)])
    synced = await sync(http, world, settings, "brevo", BREVO_KEY)
    yield synced
    synced.connector.stop()


async def held_events(http: httpx.AsyncClient, synced: Synced) -> int:
    status = await http.get(f"{synced.connector.url}/api/v1/status", headers=auth(synced.token))
    return int(status.json()["pending"]["held_inbound_events"])


async def wait_held(http: httpx.AsyncClient, synced: Synced, count: int) -> None:
    deadline = time.monotonic() + 60  # a bound for a hung product, not a speed check
    while await held_events(http, synced) < count:
        assert time.monotonic() < deadline, "the burst was not held"
        await asyncio.sleep(0.2)


@pytest.fixture
async def brevo(world: World, settings: Settings, http: httpx.AsyncClient) -> AsyncIterator[Synced]:
    world.onoffice.seed(
        [address(1, "anna@example.de"), address(2, "bob@example.de"), address(3, "cem@example.de")]
    )
    synced = await sync(http, world, settings, "brevo", BREVO_KEY)
    yield synced
    synced.connector.stop()


def yes_emails(world: World) -> set[str]:
    """Emails of onOffice addresses with Newsletter Yes."""
    found = (a.to_dict() for a in world.onoffice.addresses.values())
    return {str(a["Email"]) for a in found if str(a["newsletter_aktiv"]) == "1"}


def mailchimp_requests(world: World) -> int:
    """The requests of everything but the webhook health check (its own sweep, its own cost)."""
    counts = world.mailchimp.request_counts
    return sum(n for route, n in counts.items() if "/webhooks" not in route)


class TestMailchimp:
    async def test_an_api_unsubscribe_and_a_sign_up_reach_onoffice_without_a_webhook(
        self, world: World, mailchimp: Synced, database_url: str
    ) -> None:
        await rounds(database_url, 1)
        world.mailchimp.member_action(mailchimp.list_id, "anna@example.de", "admin_unsubscribe")
        world.mailchimp.member_action(mailchimp.list_id, "neu@example.de", "subscribe")

        after = await rounds(database_url, 1)
        assert after.result == "ok" and after.events == 2
        await eventually(lambda: newsletter(world, 1) == "0", "the unsubscribe in onOffice", 10)
        await eventually(lambda: "neu@example.de" in yes_emails(world), "the new address", 10)
        assert newsletter(world, 2) == "1"  # bob changed nothing
        keys = [r[0] for r in await rows(database_url, select(InboundEvent.dedupe_key))]
        assert all(k.startswith("reconcile") for k in keys), keys

        # The change is not found twice: the next windows overlap, nothing new is stored.
        again = await rounds(database_url, 2)
        assert again.result == "ok" and again.events == 0
        assert len(await rows(database_url, select(InboundEvent.id))) == 2

    async def test_a_change_told_by_a_webhook_and_found_by_the_reconciliation_counts_once(
        self, world: World, mailchimp: Synced, database_url: str, http: httpx.AsyncClient
    ) -> None:
        await rounds(database_url, 1)
        world.mailchimp.member_action(mailchimp.list_id, "anna@example.de", "unsubscribe")
        (hook,) = world.mailchimp.lists[mailchimp.list_id].webhooks.values()
        form = mailchimp_form("unsubscribe", "anna@example.de", list_id=mailchimp.list_id)
        assert (await http.post(hook["url"], data=form)).status_code == 200

        await rounds(database_url, 2)
        await eventually(lambda: newsletter(world, 1) == "0", "the unsubscribe in onOffice", 10)
        await asyncio.sleep(1)
        assert len(activities(world, 1)) == 1  # one activity, whichever came first

    async def test_a_change_whose_webhook_waits_to_be_applied_is_not_stored_again(
        self, world: World, mailchimp: Synced, database_url: str, http: httpx.AsyncClient
    ) -> None:
        """onOffice is down: the unsubscribe webhook's event waits (pending). The
        reconciliations that read the unsubscribe meanwhile store no second event for it
        (before: one `reconcile:` event each time the ledger had not learnt it yet; a burst of
        webhooks was stored again by the thousands). Once onOffice is back the webhook's
        event is applied, once."""
        await rounds(database_url, 1)
        world.onoffice.faults.append(OnOfficeFault("http", 100_000, status=503))
        world.mailchimp.member_action(mailchimp.list_id, "anna@example.de", "unsubscribe")
        (hook,) = world.mailchimp.lists[mailchimp.list_id].webhooks.values()
        form = mailchimp_form("unsubscribe", "anna@example.de", list_id=mailchimp.list_id)
        assert (await http.post(hook["url"], data=form)).status_code == 200

        after = await rounds(database_url, 2)
        assert after.result == "ok" and after.changed >= 1 and after.events == 0, after
        stored = await rows(database_url, select(InboundEvent.dedupe_key, InboundEvent.status))
        assert [(k.startswith("reconcile"), s) for k, s in stored] == [(False, "pending")]
        assert newsletter(world, 1) == "1"

        world.onoffice.faults.clear()
        await eventually(lambda: newsletter(world, 1) == "0", "the unsubscribe in onOffice", 30)
        await asyncio.sleep(1)
        assert len(activities(world, 1)) == 1
        assert len(await rows(database_url, select(InboundEvent.id))) == 1

    async def test_an_idle_connection_costs_at_most_two_requests_per_reconciliation(
        self, world: World, mailchimp: Synced, database_url: str
    ) -> None:
        await rounds(database_url, 2)  # the first reads after the sync see its own writes
        before = mailchimp_requests(world)
        after = await rounds(database_url, 3)
        assert after.result == "ok" and after.events == 0
        assert mailchimp_requests(world) - before <= 2 * 3

    async def test_a_rejected_key_is_marked_and_not_retried_in_a_loop(
        self, world: World, mailchimp: Synced, database_url: str, http: httpx.AsyncClient
    ) -> None:
        await rounds(database_url, 1)
        world.mailchimp.api_keys.discard(DEFAULT_API_KEY)
        failed = await rounds(database_url, 1)
        assert failed.result == "key_failed" and failed.failures == 1 and failed.error
        status = await http.get(
            f"{mailchimp.connector.url}/api/v1/status", headers=auth(mailchimp.token)
        )
        shown = status.json()["reconciliation"]
        assert shown["result"] == "key_failed" and shown["error"]
        # Backed off: the next try waits twice the interval, the one after four times.
        await asyncio.sleep(INTERVAL_S * 1.5)
        now = await state(database_url)
        assert now is not None and now.attempted_at == failed.attempted_at
        # A valid key again: the next try succeeds and the mark is gone.
        world.mailchimp.api_keys.add(DEFAULT_API_KEY)
        healed = await rounds(database_url, 1, wait_s=4 * INTERVAL_S + 10)
        assert healed.result == "ok" and healed.failures == 0 and healed.error is None

    async def test_an_archive_all_found_by_the_reconciliation_is_held_never_applied(
        self, world: World, mailchimp_book: Synced, database_url: str, http: httpx.AsyncClient
    ) -> None:
        await rounds(database_url, 1)
        for i in range(1, 26):
            world.mailchimp.member_action(mailchimp_book.list_id, f"p{i}@example.de", "archive")

        after = await rounds(database_url, 1)
        assert after.events == 25

        await wait_held(http, mailchimp_book, 25)
        await rounds(database_url, 1)
        assert {newsletter(world, i) for i in range(1, 26)} == {"1"}  # onOffice unchanged
        # Found again by the overlapping window: not stored twice.
        assert await held_events(http, mailchimp_book) == 25


class TestBrevo:
    async def test_a_blacklist_and_a_list_removal_reach_onoffice_without_a_webhook(
        self, world: World, brevo: Synced, database_url: str
    ) -> None:
        await rounds(database_url, 1)
        account = world.brevo.accounts[BREVO_KEY]
        world.brevo.contact_action(account, "anna@example.de", "unsubscribe")  # blacklisted
        unlink(account, account.contacts["bob@example.de"], int(brevo.list_id))

        after = await rounds(database_url, 1)
        assert after.result == "ok" and after.events == 2
        await eventually(lambda: newsletter(world, 1) == "0", "the blacklist in onOffice", 10)
        # A single removal: "not specified" once the Archive-All window passed.
        await eventually(lambda: newsletter(world, 2) == "4", "the removal in onOffice", 10)
        assert newsletter(world, 3) == "1"
        again = await rounds(database_url, 2)
        assert again.events == 0

    async def test_many_list_removals_at_once_are_held_never_applied(
        self, world: World, brevo_book: Synced, database_url: str, http: httpx.AsyncClient
    ) -> None:
        await rounds(database_url, 1)
        account = world.brevo.accounts[BREVO_KEY]
        for i in range(1, 26):
            unlink(account, account.contacts[f"p{i}@example.de"], int(brevo_book.list_id))

        after = await rounds(database_url, 1)
        assert after.events == 25
        await wait_held(http, brevo_book, 25)
        await rounds(database_url, 1)
        assert {newsletter(world, i) for i in range(1, 26)} == {"1"}  # onOffice unchanged
        # A user applies the burst: each removal is confirmed at Brevo (no longer in the list).
        applied = await http.post(
            f"{brevo_book.connector.url}/api/v1/held-events/apply", headers=auth(brevo_book.token)
        )
        assert applied.status_code == 200 and applied.json()["events"] == 25
        await eventually(
            lambda: {newsletter(world, i) for i in range(1, 26)} == {"4"}, "the removals", 20
        )
