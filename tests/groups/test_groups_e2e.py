"""Issue 19 over HTTP: a customer with a customer-wide connection (no group, Mailchimp) and two
groups' connections (Nord: Brevo account "de", Süd: Brevo account "en"). Each list gets its
scope's addresses; a sign-up on Süd's list never reaches Nord's; an opt-out from Süd's list is
written to onOffice and, on an address both groups cover (one Newsletter field per address),
unsubscribes at Nord and at the customer-wide list too; Süd's jobs never send Nord's claim."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db.engine import create_engine
from emulators.mailchimp import DEFAULT_API_KEY, subscriber_hash
from emulators.onoffice.users import EmuGroup, EmuUser
from tests.consent.conftest import eventually
from tests.e2e.conftest import World, e2e_settings, http, world  # noqa: F401  (fixtures)
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    open_session,
    run_full_sync,
    start_connector,
)
from tests.e2e.test_webhooks import address

WEB_ID = "C1"
NORD, SUED = "7", "8"
CLAIMS = {NORD: "claim-anna", SUED: "claim-ben"}
USERS = {NORD: "1", SUED: "2"}
KEYS = {NORD: "test-key-de", SUED: "test-key-en"}


@dataclass
class Customer:
    world: World
    http: httpx.AsyncClient
    connector: Connector
    tokens: dict[str, str]  # "" = the customer-wide connection
    lists: dict[str, str]

    async def api(self, group: str, method: str, path: str, **kw: Any) -> httpx.Response:
        url = f"{self.connector.url}{path}"
        return await self.http.request(method, url, headers=auth(self.tokens[group]), **kw)

    async def sync(self, group: str) -> dict[str, Any]:
        run = await run_full_sync(self.http, self.connector, self.tokens[group])
        assert run["status"] == "completed", run
        return run

    async def poll(self, group: str) -> None:
        """One poll of the group's connection, waited for (its watermark moves)."""
        before = await self._watermark(group)
        await asyncio.sleep(1.1)  # Aenderung has second resolution
        assert (await self.api(group, "POST", "/api/v1/changes/poll")).status_code == 202

        async def moved() -> bool:
            return await self._watermark(group) != before

        await eventually(moved, f"the poll of group {group!r}")

    async def _watermark(self, group: str) -> Any:
        return await self.sql(
            "SELECT onoffice_watermark FROM connection WHERE group_id = :g", g=group
        )

    async def sql(self, statement: str, **params: Any) -> Any:
        engine = create_engine(self.connector.settings.DATABASE_URL)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return result.scalar() if result.returns_rows else None
        finally:
            await engine.dispose()

    def brevo_list(self, group: str) -> set[str]:
        account = self.world.brevo.accounts[KEYS[group]]
        wanted = int(self.lists[group])
        return {
            email
            for email, c in account.contacts.items()
            if wanted in c.list_ids and not c.blacklisted
        }

    def mailchimp_list(self) -> set[str]:
        members = self.world.mailchimp.lists[self.lists[""]].members.values()
        return {m.email for m in members if m.status == "subscribed"}

    async def brevo_event(self, group: str, event: dict[str, Any]) -> None:
        hook = next(iter(self.world.brevo.accounts[KEYS[group]].webhooks.values()))
        token = (hook.get("auth") or {}).get("token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = {"ts": int(time.time()), **event}
        response = await self.http.post(hook["url"], json=body, headers=headers)
        assert response.status_code == 200, response.text

    async def settled(self, group: str) -> None:
        async def done() -> bool:
            status = (await self.api(group, "GET", "/api/v1/status")).json()
            return int(status["pending"]["inbound_events"]) == 0

        await eventually(done, "events applied")


def _book(emulated: World) -> None:
    """anna is in Nord, ben in Süd, sam in both; cleo (no group) may see everything."""
    emulated.onoffice.seed(
        [
            address(1, "a1@x.de", Benutzer="anna"),
            address(2, "a2@x.de", Benutzer="anna"),
            address(3, "b1@x.de", Benutzer="ben"),
            address(4, "s1@x.de", Benutzer="sam"),
            address(5, "n1@x.de"),  # no support user: only the customer-wide list
        ]
    )
    emulated.onoffice.users = {
        1: EmuUser(1, "anna"),
        2: EmuUser(2, "ben"),
        3: EmuUser(3, "cleo", visibility="all"),
        4: EmuUser(4, "sam"),
    }
    emulated.onoffice.groups = {
        7: EmuGroup(7, "Nord", user_ids=[1, 4]),
        8: EmuGroup(8, "Süd", user_ids=[2, 4]),
    }


@pytest.fixture
async def customer(
    world: World,  # noqa: F811
    e2e_settings: Settings,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
) -> AsyncIterator[Customer]:
    _book(world)
    connector = start_connector(e2e_settings)
    tenant = Tenant(WEB_ID, WEB_ID.lower() * 16, "z" * 64, f"claim-{WEB_ID}")
    token, saved = await connect_tenant(
        http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
    )
    tokens, lists = {"": token}, {"": saved["list_id"]}
    # The groups' users open the connector (their claims are theirs at onOffice too).
    world.onoffice.customers[tenant.token].user_claims = {
        CLAIMS[g]: int(USERS[g]) for g in (NORD, SUED)
    }
    for group in (NORD, SUED):
        member = Tenant(WEB_ID, tenant.token, tenant.secret, CLAIMS[group], group_id=group)
        tokens[group] = await open_session(http, connector, member, userId=USERS[group])
        response = await http.put(
            f"{connector.url}/api/v1/connection",
            headers=auth(tokens[group]),
            json={"provider": "brevo", "api_key": KEYS[group]},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["scope"]["kind"] == "group_users"
        lists[group] = body["list_id"]
    yield Customer(world, http, connector, tokens, lists)
    connector.stop()


async def test_each_list_gets_its_scope_and_nothing_crosses(customer: Customer) -> None:
    onoffice = customer.world.onoffice
    await customer.sync("")
    await customer.sync(NORD)
    used_before = {c: Counter(n) for c, n in onoffice.claims_used.items()}
    run = await customer.sync(SUED)
    # Süd's jobs ran with ben's claim only: nobody else's claim was sent meanwhile.
    sent = {c: n - used_before.get(c, Counter()) for c, n in onoffice.claims_used.items()}
    assert {c for c, n in sent.items() if +n} == {CLAIMS[SUED]}
    assert CLAIMS[NORD] in used_before  # Nord's run used anna's
    assert run["counts"]["onoffice_newsletter_total"] == 2  # the scope's addresses

    all_five = {"a1@x.de", "a2@x.de", "b1@x.de", "s1@x.de", "n1@x.de"}
    assert customer.mailchimp_list() == all_five
    assert customer.brevo_list(NORD) == {"a1@x.de", "a2@x.de", "s1@x.de"}
    assert customer.brevo_list(SUED) == {"b1@x.de", "s1@x.de"}
    status = (await customer.api(SUED, "GET", "/api/v1/status")).json()
    assert status["scope"]["kind"] == "group_users" and status["scope"]["waiting"] is None
    assert status["scope"]["newsletter_addresses"] == 2

    for group in ("", NORD, SUED):
        await customer.poll(group)  # the first poll sets each watermark

    # Someone signs up on Süd's list: the address is created in Süd's scope (ben's) ...
    account = customer.world.brevo.accounts[KEYS[SUED]]
    customer.world.brevo.seed_contact(account, "neu@x.de", list_ids=[int(customer.lists[SUED])])
    await customer.brevo_event(
        SUED,
        {"event": "list_addition", "email": "neu@x.de", "list_id": [int(customer.lists[SUED])]},
    )
    await customer.settled(SUED)
    (created,) = [a for a in onoffice.addresses.values() if a.email == "neu@x.de"]
    assert (created.newsletter, created.benutzer) == ("1", "ben")
    # ... and Nord's poll never pushes it to Nord's list.
    await customer.poll(NORD)
    assert "neu@x.de" not in customer.brevo_list(NORD)

    # sam's person opts out at Süd: written to onOffice (address 4, which both groups
    # cover), so Nord's poll and the customer-wide poll unsubscribe it too.
    customer.world.brevo.contact_action(account, "s1@x.de", "unsubscribe")
    await customer.brevo_event(
        SUED,
        {"event": "unsubscribed", "email": "s1@x.de", "list_id": [int(customer.lists[SUED])]},
    )
    await customer.settled(SUED)
    assert str(onoffice.addresses[4].newsletter) == "0"
    await customer.poll(NORD)
    await customer.poll("")
    assert "s1@x.de" not in customer.brevo_list(NORD)
    members = customer.world.mailchimp.lists[customer.lists[""]].members
    assert members[subscriber_hash("s1@x.de")].status == "unsubscribed"
    # Nord's claim was never sent by Süd's work, nor Süd's by Nord's: each claim's calls are
    # its own group's (the emulator records the claim of every call).
    assert CLAIMS[SUED] in onoffice.claims_used and CLAIMS[NORD] in onoffice.claims_used


async def test_a_group_without_its_claim_waits_visibly(customer: Customer) -> None:
    await customer.sql("DELETE FROM group_claim WHERE group_id = :g", g=NORD)
    used_before = Counter(customer.world.onoffice.claims_used.get(CLAIMS[NORD], {}))
    headers = {"Accept-Language": "de"} | auth(customer.tokens[NORD])
    url = f"{customer.connector.url}/api/v1/status"
    status = (await customer.http.get(url, headers=headers)).json()
    assert status["scope"]["waiting"].startswith("Wartet: Ein Benutzer der Gruppe 7 ")
    run = await run_full_sync(customer.http, customer.connector, customer.tokens[NORD])
    assert run["status"] == "failed"
    assert run["error"] == "Waiting: a user of group 7 must open the connector once in onOffice."
    # It never fell back to another claim: nothing was read for Nord's list.
    assert customer.brevo_list(NORD) == set()
    assert Counter(customer.world.onoffice.claims_used.get(CLAIMS[NORD], {})) == used_before


async def test_an_address_saved_reaches_only_the_lists_that_cover_it(customer: Customer) -> None:
    """onOffice's "address saved" webhook: each connection re-reads the address with its own
    claim and scope; a group waiting for its claim does not hold up the others, and its poll
    brings the change once a user of the group opened the connector again."""
    from tests.e2e.harness import signed_query

    onoffice = customer.world.onoffice
    for group in ("", NORD, SUED):
        await customer.sync(group)
        await customer.poll(group)
    await customer.sql("DELETE FROM group_claim WHERE group_id = :g", g=NORD)
    onoffice.seed([address(1, "a1@x.de", newsletter="0", Benutzer="anna")], replace=False)
    onoffice.seed([address(3, "b1@x.de", newsletter="0", Benutzer="ben")], replace=False)
    for record_id in (1, 3):
        params = {
            "customerWebId": WEB_ID,
            "apiClaim": f"claim-{WEB_ID}",
            "userId": "3",
            "timestamp": str(int(time.time())),
            "recordId": str(record_id),
        }
        query = signed_query(customer.connector.url, "/onoffice/webhook", params)
        hook = await customer.http.get(f"{customer.connector.url}/onoffice/webhook", params=query)
        assert hook.status_code == 200, hook.text

    def unsubscribed_elsewhere() -> bool:
        return (
            "b1@x.de" not in customer.brevo_list(SUED)
            and not {"a1@x.de", "b1@x.de"} & customer.mailchimp_list()
        )

    await eventually(unsubscribed_elsewhere, "Süd's and the customer-wide list")
    assert customer.brevo_list(SUED) == {"s1@x.de"}
    assert "a1@x.de" in customer.brevo_list(NORD)  # Nord waits for its claim

    async def applied() -> bool:
        sql = "SELECT count(*) FROM inbound_event WHERE status <> 'applied'"
        return not await customer.sql(sql)

    await eventually(applied, "the address events applied (Nord's wait holds up nobody)")

    # anna opens the connector again: Nord's poll brings the change.
    member = Tenant(WEB_ID, WEB_ID.lower() * 16, "z" * 64, CLAIMS[NORD], group_id=NORD)
    customer.tokens[NORD] = await open_session(
        customer.http, customer.connector, member, userId=USERS[NORD]
    )
    assert (await customer.api(NORD, "POST", "/api/v1/changes/poll")).status_code == 202
    await eventually(lambda: "a1@x.de" not in customer.brevo_list(NORD), "Nord's poll")
    assert customer.brevo_list(NORD) == {"a2@x.de", "s1@x.de"}
