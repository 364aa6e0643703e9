"""Issue 19, path by path: the reconciliation's and the confirmation's new-address creation and
the webhook health check of a group's connection use that connection's own clients (its
provider key and list; its group's onOffice claim and scope). Each test fails if the
customer-wide connection's client (another provider, the customer's claim, no scope) were
used: the contact exists only in Süd's Brevo account, and the onOffice emulator logs the claim
of every address it creates."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.reconcile.service import reconcile
from app.resources import Resources, create_resources
from app.webhooks import checkup
from emulators.mailchimp import DEFAULT_API_KEY, subscriber_hash
from tests.consent.conftest import eventually
from tests.e2e.conftest import World, e2e_settings, http, world  # noqa: F401  (fixtures)
from tests.e2e.harness import (
    Tenant,
    activate_tenant,
    auth,
    open_session,
    run_full_sync,
    start_connector,
)
from tests.e2e.test_webhooks import address
from tests.groups.test_groups_e2e import (  # noqa: F401  (the fixture `customer`)
    CLAIMS,
    KEYS,
    NORD,
    SUED,
    USERS,
    WEB_ID,
    Customer,
    _book,
    customer,
)


@pytest.fixture
async def resources(customer: Customer) -> AsyncIterator[Resources]:  # noqa: F811
    """The process's parts as a worker has them (jobs in-process, drained by the test)."""
    made = await create_resources(customer.connector.settings)
    yield made
    await made.aclose()


async def _connection_id(customer: Customer, group: str) -> int:  # noqa: F811
    found = await customer.sql("SELECT id FROM connection WHERE group_id = :g", g=group)
    return int(found)


def _created(customer: Customer, email: str) -> list[tuple[str | None, str]]:  # noqa: F811
    """(claim, support user) of each address created for `email`."""
    onoffice = customer.world.onoffice
    ids = {a.id for a in onoffice.addresses.values() if a.email == email}
    log = onoffice.access_log or []
    return [(claim, onoffice.addresses[i].benutzer) for claim, op, i in log
            if op == "create" and i in ids]  # fmt: skip


async def test_a_sign_up_the_reconciliation_finds_is_created_in_the_groups_scope(
    customer: Customer,  # noqa: F811
    resources: Resources,
) -> None:
    await customer.sync(SUED)
    customer.world.onoffice.access_log = []
    account = customer.world.brevo.accounts[KEYS[SUED]]
    # A sign-up on Süd's list that no webhook told.
    customer.world.brevo.seed_contact(account, "leise@x.de", list_ids=[int(customer.lists[SUED])])
    outcome = await reconcile(resources, await _connection_id(customer, SUED))
    assert outcome is not None and outcome.result == "ok" and outcome.events == 1
    await resources.queue.join()  # type: ignore[attr-defined]  (the applier, in-process)
    await customer.settled(SUED)
    # Created once, with Süd's claim, ben (Süd's user) as support user: in Süd's scope.
    assert _created(customer, "leise@x.de") == [(CLAIMS[SUED], "ben")]


async def test_a_confirmed_sign_up_is_read_and_created_with_the_groups_clients(
    customer: Customer,  # noqa: F811
) -> None:
    await customer.sync(SUED)
    customer.world.onoffice.access_log = []
    account = customer.world.brevo.accounts[KEYS[SUED]]
    lists_read = sum(n for r, n in customer.world.mailchimp.request_counts.items())
    customer.world.brevo.seed_contact(account, "neu@x.de", list_ids=[int(customer.lists[SUED])])
    event = {"event": "list_addition", "email": "neu@x.de", "list_id": [int(customer.lists[SUED])]}
    await customer.brevo_event(SUED, event)
    await customer.settled(SUED)
    # Confirmed by Süd's Brevo account (the contact is nowhere else), created in Süd's scope.
    await eventually(lambda: bool(_created(customer, "neu@x.de")), "the new address")
    assert _created(customer, "neu@x.de") == [(CLAIMS[SUED], "ben")]
    # The customer-wide connection's Mailchimp account was not asked.
    assert sum(n for r, n in customer.world.mailchimp.request_counts.items()) == lists_read


async def test_the_webhook_health_check_repairs_the_groups_own_webhook(
    customer: Customer,  # noqa: F811
    resources: Resources,
) -> None:
    brevo = customer.world.brevo
    sued, nord = brevo.accounts[KEYS[SUED]], brevo.accounts[KEYS[NORD]]
    (url,) = [hook["url"] for hook in sued.webhooks.values()]
    nord_hooks = dict(nord.webhooks)
    mailchimp_hooks = dict(customer.world.mailchimp.lists[customer.lists[""]].webhooks)
    sued.webhooks.clear()  # someone deleted Süd's webhook in Brevo
    result = await checkup.check(resources, await _connection_id(customer, SUED))
    assert result == checkup.REPAIRED
    # Registered again in Süd's account, with Süd's address; nobody else's was touched.
    assert [hook["url"] for hook in sued.webhooks.values()] == [url]
    assert nord.webhooks == nord_hooks
    assert customer.world.mailchimp.lists[customer.lists[""]].webhooks == mailchimp_hooks


async def test_the_tag_pull_back_writes_only_the_groups_addresses(
    world: World,  # noqa: F811
    e2e_settings: Settings,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    """Nord's Mailchimp list: a tag a marketer adds there reaches both of Nord's addresses of
    the person (a duplicate in the group's scope), never the same email's address in Süd's
    scope (the customer-wide client would read and write it too)."""
    _book(world)
    world.onoffice.seed(
        [
            address(1, "a1@x.de", Benutzer="anna", NewsletterTag=["Kaeufer"]),
            address(6, "a1@x.de", Benutzer="ben", NewsletterTag=["Kaeufer"]),
            address(7, "a1@x.de", Benutzer="anna", NewsletterTag=["Kaeufer"]),
        ],
        replace=False,
    )
    world.onoffice.users[1].visibility = "all"  # onOffice lets anna see ben's too
    connector = start_connector(e2e_settings)
    try:
        tenant = Tenant(WEB_ID, WEB_ID.lower() * 16, "z" * 64, f"claim-{WEB_ID}")
        await activate_tenant(http, connector, world.onoffice_url, tenant)
        world.onoffice.customers[tenant.token].user_claims = {CLAIMS[NORD]: int(USERS[NORD])}
        member = Tenant(WEB_ID, tenant.token, tenant.secret, CLAIMS[NORD], group_id=NORD)
        token = await open_session(http, connector, member, userId=USERS[NORD])
        saved = await http.put(
            f"{connector.url}/api/v1/connection",
            headers=auth(token),
            json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY},
        )
        assert saved.status_code == 200, saved.text
        list_id = saved.json()["list_id"]
        assert (await run_full_sync(http, connector, token))["status"] == "completed"
        state = world.mailchimp
        lst = state.lists[list_id]
        lst.members[subscriber_hash("a1@x.de")].tags["Mieter"] = state._tag_id(lst, "Mieter")
        lst.version += 1
        world.onoffice.access_log = []
        run = await run_full_sync(http, connector, token)
        assert run["status"] == "completed" and run["counts"]["tags_pulled"] == 2, run
        tags = {i: sorted(world.onoffice.addresses[i].tags) for i in (1, 6, 7)}
        assert tags == {1: ["Kaeufer", "Mieter"], 6: ["Kaeufer"], 7: ["Kaeufer", "Mieter"]}
        writes = [(c, i) for c, op, i in world.onoffice.access_log if op == "modify"]
        assert sorted(writes) == [(CLAIMS[NORD], 1), (CLAIMS[NORD], 7)]
    finally:
        connector.stop()
