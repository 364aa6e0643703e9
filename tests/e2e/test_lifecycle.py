"""The connection's lifecycle over HTTP (issue #17 stories 3, 5, 6 and 8): no switch under a
running sync, cancelling a run, nothing the provider said lost on a switch or a disconnect,
approval of exactly the held set, and a failed write-back retried by the next run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.db.engine import create_engine
from app.db.models import Contact, InboundEvent
from emulators.mailchimp import DEFAULT_API_KEY, subscriber_hash
from emulators.onoffice import Fault as OnOfficeFault
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    signed_query,
    start_connector,
    wait_for_run,
)
from tests.e2e.test_webhooks import address, eventually, fired_at, newsletter


@dataclass
class Connected:
    connector: Connector
    token: str
    list_id: str
    tenant: Tenant

    def url(self, path: str) -> str:
        return f"{self.connector.url}{path}"


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes (parametrize it)."""
    return {}


@pytest.fixture
async def connected(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient, overrides: dict[str, Any]
) -> AsyncIterator[Connected]:
    world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
    settings = e2e_settings.model_copy(update=overrides)
    connector = start_connector(settings)
    tenant = Tenant("L1", "l" * 32, "m" * 64, "claim-l")
    try:
        token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
        )
        yield Connected(connector, token, saved["list_id"], tenant)
    finally:
        connector.stop()


async def scalar(database_url: str, stmt: Any) -> Any:
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        value = await conn.scalar(stmt)
    await engine.dispose()
    return value


async def event_statuses(database_url: str, *, webhooks_only: bool = False) -> list[str]:
    """The stored events' statuses; `webhooks_only`: without the connector's own write-backs
    of opt-outs it read at the provider (e.g. before a disconnect)."""
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        query = select(InboundEvent.status).order_by(InboundEvent.id)
        if webhooks_only:
            query = query.where(InboundEvent.dedupe_key.not_like("reconcile:%"))
        rows = (await conn.execute(query)).all()
    await engine.dispose()
    return [str(r[0]) for r in rows]


async def tried_once(database_url: str) -> None:
    """Wait until the drain tried the one stored event and left it pending (a backoff)."""
    deadline = time.monotonic() + 30
    while not await scalar(database_url, select(func.max(InboundEvent.attempts))):
        assert time.monotonic() < deadline, await event_statuses(database_url)
        await asyncio.sleep(0.1)


async def get_run(http: httpx.AsyncClient, c: Connected, run_id: int) -> dict[str, Any]:
    response = await http.get(c.url(f"/api/v1/syncs/{run_id}"), headers=auth(c.token))
    body: dict[str, Any] = response.json()
    return body


async def start_slow_run(
    http: httpx.AsyncClient, world: World, c: Connected, *, addresses: int
) -> int:
    """A run over `addresses` addresses that takes a while (slow onOffice and Mailchimp)."""
    world.onoffice.seed(
        [address(i, f"p{i}@example.de") for i in range(1, addresses + 1)], replace=True
    )
    world.onoffice.latency = 0.15
    world.mailchimp.latency_s = 0.05
    started = await http.post(c.url("/api/v1/syncs"), headers=auth(c.token))
    assert started.status_code == 202, started.text
    return int(started.json()["id"])


async def unsubscribe_webhook(
    http: httpx.AsyncClient, world: World, c: Connected, email: str
) -> None:
    world.mailchimp.member_action(c.list_id, email, "unsubscribe")  # then its webhook
    (hook,) = world.mailchimp.lists[c.list_id].webhooks.values()
    form = {
        "type": "unsubscribe",
        "fired_at": fired_at(),
        "data[email]": email,
        "data[action]": "unsub",
        "data[list_id]": c.list_id,
    }
    response = await http.post(hook["url"], data=form)
    assert response.status_code == 200, response.text


class TestSwitchAndCancel:
    async def test_story3_a_list_switch_during_a_running_sync_is_refused_and_wipes_nothing(
        self, world: World, connected: Connected, http: httpx.AsyncClient, database_url: str
    ) -> None:
        c = connected
        assert (await run_full_sync(http, c.connector, c.token))["status"] == "completed"
        run_id = await start_slow_run(http, world, c, addresses=1500)
        await eventually(
            lambda: world.mailchimp.request_counts["POST /3.0/lists/{list_id}"] >= 1,
            "a first batch",
        )
        ledger = await scalar(database_url, select(func.count()).select_from(Contact))
        assert ledger >= 2
        switched = await http.put(
            c.url("/api/v1/connection"),
            headers=auth(c.token),
            json={"provider": "brevo", "api_key": "test-key-de"},
        )
        assert switched.status_code == 409, switched.text
        body = switched.json()
        assert str(run_id) in body["message"] and body["details"]["run_id"] == run_id
        # Nothing was wiped or moved: the ledger is intact and the run ends in the same list.
        assert await scalar(database_url, select(func.count()).select_from(Contact)) >= ledger
        brevo = world.brevo.accounts["test-key-de"]
        assert brevo.lists == {} and brevo.contacts == {} and brevo.webhooks == {}
        world.onoffice.latency = 0.0
        world.mailchimp.latency_s = 0.0
        run = await wait_for_run(http, c.connector.url, c.token, run_id)
        assert run["status"] == "completed" and run["counts"]["reconciled"] is True, run
        connection = (await http.get(c.url("/api/v1/connection"), headers=auth(c.token))).json()
        assert connection["provider"] == "mailchimp" and connection["list_id"] == c.list_id
        # Once the run is over the switch is allowed.
        switched = await http.put(
            c.url("/api/v1/connection"),
            headers=auth(c.token),
            json={"provider": "brevo", "api_key": "test-key-de"},
        )
        assert switched.status_code == 200, switched.text

    async def test_story3_a_switch_to_another_list_of_the_same_account_waits_for_the_run(
        self, world: World, connected: Connected, http: httpx.AsyncClient, database_url: str
    ) -> None:
        c = connected
        assert (await run_full_sync(http, c.connector, c.token))["status"] == "completed"
        ledger = await scalar(database_url, select(func.count()).select_from(Contact))
        run_id = await start_slow_run(http, world, c, addresses=1500)
        batches = "POST /3.0/lists/{list_id}"
        await eventually(lambda: world.mailchimp.request_counts[batches] >= 1, "a first batch")
        # Someone renamed the audience in Mailchimp: saving again means a new list "onoffice".
        world.mailchimp.lists[c.list_id].name = "Alte Liste"
        saved = await http.put(
            c.url("/api/v1/connection"),
            headers=auth(c.token),
            json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY},
        )
        assert saved.status_code == 409, saved.text
        assert await scalar(database_url, select(func.count()).select_from(Contact)) >= ledger
        world.onoffice.latency = 0.0
        world.mailchimp.latency_s = 0.0
        run = await wait_for_run(http, c.connector.url, c.token, run_id)
        assert run["status"] == "completed" and run["counts"]["reconciled"] is True, run
        old = world.mailchimp.lists[c.list_id].members.values()
        assert sum(1 for m in old if m.status == "subscribed") == 1500
        (new_list,) = [i for i, lst in world.mailchimp.lists.items() if i != c.list_id]
        assert world.mailchimp.lists[new_list].members == {}  # nothing went to the new list
        saved = await http.put(
            c.url("/api/v1/connection"),
            headers=auth(c.token),
            json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY},
        )
        assert saved.status_code == 200 and saved.json()["list_id"] == new_list, saved.text

    # Small pages read one at a time: the read is still going when the first batch is sent.
    @pytest.mark.parametrize(
        "overrides",
        [{"ONOFFICE_PAGE_SIZE": 100, "SYNC_BATCH_SIZE": 100, "ONOFFICE_READ_CONCURRENCY": 1}],
    )
    async def test_story3_cancel_stops_a_run(
        self, world: World, connected: Connected, http: httpx.AsyncClient
    ) -> None:
        c = connected
        run_id = await start_slow_run(http, world, c, addresses=3000)
        batches = "POST /3.0/lists/{list_id}"
        await eventually(lambda: world.mailchimp.request_counts[batches] >= 1, "a first batch")
        cancelled = await http.post(c.url(f"/api/v1/syncs/{run_id}/cancel"), headers=auth(c.token))
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        at_cancel = world.mailchimp.request_counts[batches]
        # A batch or page already on its way may still arrive; after that, nothing more is
        # read from onOffice or sent to Mailchimp.
        await asyncio.sleep(1.5)
        settled = world.mailchimp.request_counts[batches]
        pages = world.onoffice.request_counts["read:address"]
        assert settled <= at_cancel + 2
        await asyncio.sleep(1.5)
        assert world.mailchimp.request_counts[batches] == settled
        assert world.onoffice.request_counts["read:address"] == pages
        run = await get_run(http, c, run_id)
        assert run["status"] == "cancelled" and run["progress"]["phase"] == "cancelled", run
        assert run["finished_at"] is not None
        subscribed = [m for m in world.mailchimp.lists[c.list_id].members.values()]
        assert 0 < len(subscribed) < 3000
        # Cancelling again is refused; a new run starts at once and completes everything.
        again = await http.post(c.url(f"/api/v1/syncs/{run_id}/cancel"), headers=auth(c.token))
        assert again.status_code == 409
        world.onoffice.latency = 0.0
        world.mailchimp.latency_s = 0.0
        run = await run_full_sync(http, c.connector, c.token)
        assert run["status"] == "completed" and run["counts"]["reconciled"] is True, run
        members = world.mailchimp.lists[c.list_id].members.values()
        assert sum(1 for m in members if m.status == "subscribed") == 3000

    async def test_story3_a_switch_first_writes_back_the_old_lists_unseen_opt_outs(
        self, world: World, connected: Connected, http: httpx.AsyncClient
    ) -> None:
        c = connected
        assert (await run_full_sync(http, c.connector, c.token))["status"] == "completed"
        # Anna unsubscribes through an API-made change: Mailchimp sends no webhook.
        world.mailchimp.member_action(c.list_id, "anna@example.de", "admin_unsubscribe")
        switched = await http.put(
            c.url("/api/v1/connection"),
            headers=auth(c.token),
            json={"provider": "brevo", "api_key": "test-key-de"},
        )
        assert switched.status_code == 200, switched.text
        # Written to onOffice before the ledger was wiped, with an activity naming the opt-out.
        assert newsletter(world, 1) == "0" and newsletter(world, 2) == "1"
        run = await run_full_sync(http, c.connector, c.token)
        assert run["status"] == "completed", run
        # The first sync into the new list does not subscribe her.
        contacts = world.brevo.accounts["test-key-de"].contacts
        assert "bob@example.de" in contacts and "anna@example.de" not in contacts


class TestDisconnect:
    async def test_story5_disconnect_applies_pending_acknowledged_unsubscribes(
        self, world: World, connected: Connected, http: httpx.AsyncClient, database_url: str
    ) -> None:
        c = connected
        assert (await run_full_sync(http, c.connector, c.token))["status"] == "completed"
        # onOffice refuses writes for a moment: the acknowledged unsubscribe stays pending.
        world.onoffice.faults.append(OnOfficeFault("http", 1000, status=503))
        await unsubscribe_webhook(http, world, c, "anna@example.de")
        await tried_once(database_url)
        assert await event_statuses(database_url) == ["pending"]
        world.onoffice.faults.clear()
        deleted = await http.delete(c.url("/api/v1/connection"), headers=auth(c.token))
        assert deleted.status_code == 204, deleted.text
        assert newsletter(world, 1) == "0" and newsletter(world, 2) == "1"
        assert await event_statuses(database_url, webhooks_only=True) == ["applied"]

    async def test_story5_events_a_disconnect_left_pending_are_applied_after_a_reconnect(
        self, world: World, connected: Connected, http: httpx.AsyncClient, database_url: str
    ) -> None:
        c = connected
        assert (await run_full_sync(http, c.connector, c.token))["status"] == "completed"
        world.onoffice.faults.append(OnOfficeFault("http", 100_000, status=503))
        await unsubscribe_webhook(http, world, c, "anna@example.de")
        await tried_once(database_url)
        deleted = await http.delete(c.url("/api/v1/connection"), headers=auth(c.token))
        assert deleted.status_code == 204, deleted.text
        world.onoffice.faults.clear()
        assert newsletter(world, 1) == "1"  # onOffice was down: still pending, kept
        assert await event_statuses(database_url, webhooks_only=True) == ["pending"]
        saved = await http.put(
            c.url("/api/v1/connection"),
            headers=auth(c.token),
            json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY},
        )
        assert saved.status_code == 200, saved.text
        await eventually(lambda: newsletter(world, 1) == "0", "the unsubscribe after reconnect")
        assert newsletter(world, 2) == "1"


class TestHeldAndRetried:
    async def test_story6_approval_acts_on_exactly_the_held_set(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(i, f"s{i}@example.de") for i in range(1, 21)])
        connector = start_connector(e2e_settings)
        tenant = Tenant("H1", "h" * 32, "i" * 64, "claim-h")
        try:
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            c = Connected(connector, token, saved["list_id"], tenant)
            members = world.mailchimp.lists[c.list_id].members
            assert (await run_full_sync(http, connector, token))["counts"]["synced"] == 20
            world.onoffice.seed(
                [address(i, f"s{i}@example.de", newsletter="0") for i in range(1, 11)],
                replace=False,
            )
            run = await run_full_sync(http, connector, token)
            assert run["counts"]["held_unsubscribes"] == 10, run
            # Later an agent adds a newsletter address; onOffice's "address saved" webhook
            # makes the incremental push subscribe it.
            world.onoffice.seed([address(99, "late@example.de")], replace=False)
            params = {
                "customerWebId": tenant.web_id,
                "apiClaim": tenant.claim,
                "userId": "17",
                "timestamp": str(int(time.time())),
                "recordId": "99",
            }
            query = signed_query(connector.url, "/onoffice/webhook", params)
            assert (await http.get(f"{connector.url}/onoffice/webhook", params=query)).is_success
            late = subscriber_hash("late@example.de")
            await eventually(
                lambda: late in members and members[late].status == "subscribed", "the push"
            )
            # The API lists exactly the held contacts, with their address ids.
            held = await http.get(
                c.url(f"/api/v1/syncs/{run['id']}/held-unsubscribes"), headers=auth(token)
            )
            assert held.status_code == 200, held.text
            assert held.json()["total"] == 10
            assert sorted((i["address_id"], i["email"]) for i in held.json()["items"]) == sorted(
                (i, f"s{i}@example.de") for i in range(1, 11)
            )
            approved = await http.post(
                c.url(f"/api/v1/syncs/{run['id']}/approve-unsubscribes"), headers=auth(token)
            )
            assert approved.status_code == 202, approved.text

            def done() -> bool:
                return all(
                    members[subscriber_hash(f"s{i}@example.de")].status == "unsubscribed"
                    for i in range(1, 11)
                )

            await eventually(done, "the approved unsubscribes")
            await asyncio.sleep(0.5)
            assert members[late].status == "subscribed"
            assert all(
                members[subscriber_hash(f"s{i}@example.de")].status == "subscribed"
                for i in range(11, 21)
            )
            run = await get_run(http, c, run["id"])
            assert run["counts"]["unsubscribed"] == 10 and run["counts"]["held_unsubscribes"] == 0
        finally:
            connector.stop()

    @pytest.mark.parametrize("overrides", [{"INBOUND_EVENT_MAX_ATTEMPTS": 1}])
    async def test_story8_a_failed_write_back_is_retried_by_the_next_run(
        self, world: World, connected: Connected, http: httpx.AsyncClient, database_url: str
    ) -> None:
        c = connected
        assert (await run_full_sync(http, c.connector, c.token))["status"] == "completed"
        # Anna unsubscribed without a webhook; the next run writes it back, but onOffice
        # refuses that write (one try allowed here): the write-back is parked as failed.
        world.mailchimp.member_action(c.list_id, "anna@example.de", "admin_unsubscribe")
        world.onoffice.faults.append(
            OnOfficeFault("inband", 1, errorcode=99, message="refused", verb="modify")
        )
        run = await run_full_sync(http, c.connector, c.token)
        assert run["counts"]["opted_out"] == 1, run
        deadline = time.monotonic() + 20
        while await event_statuses(database_url) != ["failed"]:
            assert time.monotonic() < deadline, await event_statuses(database_url)
            await asyncio.sleep(0.1)
        assert newsletter(world, 1) == "1"
        # The next run tries it again, and this time onOffice takes it.
        run = await run_full_sync(http, c.connector, c.token)
        assert run["counts"]["opted_out"] == 1, run
        await eventually(lambda: newsletter(world, 1) == "0", "the retried write-back")
        assert await event_statuses(database_url) == ["applied"]
        assert newsletter(world, 2) == "1"
