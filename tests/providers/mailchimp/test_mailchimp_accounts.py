"""The Mailchimp emulator's accounts: an API key belongs to one account and sees only that
account's audiences (another account's list id is a 404), as at Mailchimp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from emulators.mailchimp import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    MailchimpState,
    create_app,
    subscriber_hash,
)
from providers.base import ContactData, ProviderError
from providers.mailchimp import MailchimpClient, MailchimpNotFoundError

OTHER_KEY = "fedcba9876543210fedcba9876543210-us1"
OTHER_ACCOUNT = "a1b2c3d4e5f60718293a4b5c6"
MEMBER_TAGS = "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"
NOT_FOUND = "The requested resource could not be found."
LIST_BODY = {
    "name": "onoffice",
    "contact": {
        "company": "Zweite",
        "address1": "Weg 1",
        "city": "Köln",
        "state": "",
        "zip": "50667",
        "country": "DE",
    },
    "permission_reminder": "You signed up.",
    "campaign_defaults": {
        "from_name": "Zweite",
        "from_email": "office@zweite.example",
        "subject": "",
        "language": "de",
    },
    "email_type_option": False,
}


@pytest.fixture
def other(state: MailchimpState) -> str:
    state.add_account(OTHER_KEY, account_id=OTHER_ACCOUNT, name="Zweite Makler GmbH")
    return OTHER_KEY


@pytest.fixture
async def raw(state: MailchimpState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://mc.test") as client:
        yield client


def as_key(key: str) -> httpx.BasicAuth:
    return httpx.BasicAuth("x", key)


def is_not_found(response: httpx.Response) -> bool:
    return response.status_code == 404 and response.json()["detail"] == NOT_FOUND


async def test_each_key_sees_its_own_account_and_audiences(
    raw: httpx.AsyncClient, state: MailchimpState, other: str
) -> None:
    mine = state.create_list("onoffice")
    state.seed_member(mine.id, "anna@example.de")
    theirs = state.create_list("onoffice", account_id=OTHER_ACCOUNT)
    state.seed_member(theirs.id, "bob@example.de")
    state.seed_member(theirs.id, "carl@example.de")

    root_mine = (await raw.get("/3.0/", auth=as_key(DEFAULT_API_KEY))).json()
    root_theirs = (await raw.get("/3.0/", auth=as_key(other))).json()
    assert root_mine["account_id"] == DEFAULT_ACCOUNT_ID
    assert root_theirs["account_id"] == OTHER_ACCOUNT
    assert root_theirs["account_name"] == "Zweite Makler GmbH"
    assert (root_mine["total_subscribers"], root_theirs["total_subscribers"]) == (1, 2)

    for key, wanted in ((DEFAULT_API_KEY, mine.id), (other, theirs.id)):
        lists = (await raw.get("/3.0/lists", auth=as_key(key))).json()
        assert [item["id"] for item in lists["lists"]] == [wanted]
        assert lists["total_items"] == 1


async def test_another_accounts_list_is_not_found_on_every_route(
    raw: httpx.AsyncClient, state: MailchimpState, other: str
) -> None:
    theirs = state.create_list("onoffice", account_id=OTHER_ACCOUNT)
    state.seed_member(theirs.id, "bob@example.de", tags=["Kunde"])
    segment_id = theirs.tag_ids["Kunde"]
    bob = subscriber_hash("bob@example.de")
    base = f"/3.0/lists/{theirs.id}"
    calls: list[tuple[str, str, dict[str, object] | None]] = [
        ("GET", base, None),
        ("PATCH", base, LIST_BODY | {"name": "mine now"}),
        ("GET", f"{base}/merge-fields", None),
        ("POST", f"{base}/merge-fields", {"name": "Anrede", "type": "text"}),
        ("GET", f"{base}/members", None),
        ("POST", f"{base}/members", {"email_address": "eve@example.de", "status": "subscribed"}),
        ("GET", f"{base}/members/{bob}", None),
        (
            "PUT",
            f"{base}/members/{bob}",
            {"email_address": "bob@example.de", "status_if_new": "unsubscribed"},
        ),
        ("PATCH", f"{base}/members/{bob}", {"status": "unsubscribed"}),
        ("DELETE", f"{base}/members/{bob}", None),
        ("POST", f"{base}/members/{bob}/actions/delete-permanent", None),
        ("GET", f"{base}/members/{bob}/tags", None),
        ("POST", f"{base}/members/{bob}/tags", {"tags": [{"name": "X", "status": "active"}]}),
        ("GET", f"{base}/segments", None),
        ("POST", f"{base}/segments", {"name": "X", "static_segment": []}),
        ("GET", f"{base}/segments/{segment_id}", None),
        ("POST", f"{base}/segments/{segment_id}", {"members_to_remove": ["bob@example.de"]}),
        ("GET", f"{base}/webhooks", None),
        ("POST", f"{base}/webhooks", {"url": "https://connector.test/hook"}),
    ]
    for method, path, body in calls:
        response = await raw.request(method, path, json=body, auth=as_key(DEFAULT_API_KEY))
        assert is_not_found(response), (method, path, response.status_code, response.text)
    # Nothing of it happened; its own key still sees and changes it.
    member = theirs.members[bob]
    assert (member.status, list(member.tags), theirs.name) == ("subscribed", ["Kunde"], "onoffice")
    assert len(theirs.members) == 1 and not theirs.webhooks
    own = await raw.get(f"{base}/members/{bob}", auth=as_key(other))
    assert own.status_code == 200 and own.json()["list_id"] == theirs.id
    assert state.spec_violations == []


async def test_a_batch_cannot_touch_another_accounts_list(
    raw: httpx.AsyncClient, state: MailchimpState, other: str
) -> None:
    mine = state.create_list("onoffice")
    theirs = state.create_list("onoffice", account_id=OTHER_ACCOUNT)
    state.seed_member(theirs.id, "bob@example.de")
    batch = {
        "members": [
            {"email_address": "bob@example.de", "status": "unsubscribed"},
            {"email_address": "eve@example.de", "status": "subscribed"},
        ],
        "update_existing": True,
    }
    refused = await raw.post(f"/3.0/lists/{theirs.id}", json=batch, auth=as_key(DEFAULT_API_KEY))
    assert is_not_found(refused)
    assert {m.email: m.status for m in theirs.members.values()} == {"bob@example.de": "subscribed"}
    # The batch runs as the key that sent it: into that key's own list.
    done = await raw.post(f"/3.0/lists/{mine.id}", json=batch, auth=as_key(DEFAULT_API_KEY))
    assert done.json()["total_created"] == 2
    assert sorted(m.email for m in mine.members.values()) == ["bob@example.de", "eve@example.de"]
    assert theirs.members[subscriber_hash("bob@example.de")].status == "subscribed"


async def test_a_campaign_report_is_its_accounts(
    raw: httpx.AsyncClient, state: MailchimpState, other: str
) -> None:
    theirs = state.create_list("onoffice", account_id=OTHER_ACCOUNT)
    state.campaign_recipients["cmp1"] = (theirs.id, ["bob@example.de"])
    path = "/3.0/reports/cmp1/sent-to"
    assert is_not_found(await raw.get(path, auth=as_key(DEFAULT_API_KEY)))
    sent = await raw.get(path, auth=as_key(other))
    assert [r["email_address"] for r in sent.json()["sent_to"]] == ["bob@example.de"]


async def test_keys_of_one_account_share_it_and_old_registrations_are_the_default(
    raw: httpx.AsyncClient, state: MailchimpState, other: str
) -> None:
    second = "00000000000000000000000000000002-us1"
    state.add_account(second, account_id=OTHER_ACCOUNT)
    legacy = "00000000000000000000000000000003-us1"
    assert (await raw.post("/_control/api-keys", json={"api_key": legacy})).status_code == 204
    mine = state.create_list("onoffice")
    theirs = state.create_list("onoffice", account_id=OTHER_ACCOUNT)
    for key, wanted in ((second, theirs.id), (legacy, mine.id), (DEFAULT_API_KEY, mine.id)):
        lists = (await raw.get("/3.0/lists", auth=as_key(key))).json()["lists"]
        assert [item["id"] for item in lists] == [wanted], key
    # A revoked key is refused whichever account it belongs to.
    state.api_keys.discard(second)
    assert (await raw.get("/3.0/lists", auth=as_key(second))).status_code == 401


async def test_the_free_plan_limit_counts_the_accounts_own_audiences(
    raw: httpx.AsyncClient, state: MailchimpState, other: str
) -> None:
    state.max_lists = 1
    state.create_list("onoffice")
    created = await raw.post("/3.0/lists", json=LIST_BODY, auth=as_key(other))
    assert created.status_code == 200, created.text
    assert state.lists[created.json()["id"]].account_id == OTHER_ACCOUNT
    again = await raw.post("/3.0/lists", json=LIST_BODY, auth=as_key(DEFAULT_API_KEY))
    assert again.status_code == 403


async def test_control_routes_seed_another_account(
    raw: httpx.AsyncClient, state: MailchimpState
) -> None:
    added = await raw.post(
        "/_control/accounts",
        json={"api_key": OTHER_KEY, "account_id": OTHER_ACCOUNT, "name": "Zweite Makler GmbH"},
    )
    assert added.json()["account_id"] == OTHER_ACCOUNT
    created = (
        await raw.post("/_control/lists", json={"name": "onoffice", "account_id": OTHER_ACCOUNT})
    ).json()
    unknown = await raw.post("/_control/lists", json={"name": "x", "account_id": "nope"})
    assert unknown.status_code == 404
    listed = (await raw.get("/_control/lists")).json()["lists"]
    assert [(item["id"], item["account_id"]) for item in listed] == [(created["id"], OTHER_ACCOUNT)]
    assert (await raw.get("/3.0/lists", auth=as_key(DEFAULT_API_KEY))).json()["lists"] == []
    # Forgotten addresses are per account: refused in its audiences only.
    await raw.post(
        "/_control/blocked/forgotten",
        json={"emails": ["gone@example.de"], "account_id": OTHER_ACCOUNT},
    )
    mine = state.create_list("onoffice")
    assert state.forgotten(state.lists[created["id"]], "gone@example.de")
    assert not state.forgotten(mine, "gone@example.de")


async def test_two_clients_with_keys_of_two_accounts_stay_apart(
    state: MailchimpState, other: str, make_client: Callable[..., MailchimpClient]
) -> None:
    first, second = make_client(), make_client(api_key=other)
    account_a, account_b = await first.check_key(), await second.check_key()
    assert (account_a.account_id, account_b.account_id) == (DEFAULT_ACCOUNT_ID, OTHER_ACCOUNT)
    list_a, list_b = await first.ensure_list("onoffice"), await second.ensure_list("onoffice")
    assert list_a.id != list_b.id
    assert (await first.ensure_list("onoffice")).id == list_a.id  # found again, not shared
    fields = await first.ensure_fields(list_a.id)
    await first.upsert_contacts(
        list_a.id, [ContactData(email="anna@example.de", subscribed=True)], fields
    )
    assert await second.get_contact(list_b.id, "anna@example.de") is None
    assert await first.get_contact(list_a.id, "anna@example.de") is not None
    # The other account's audience does not exist for this key: a 404, nothing written.
    assert await second.get_contact(list_a.id, "anna@example.de") is None
    with pytest.raises(MailchimpNotFoundError):
        await second.upsert_contacts(
            list_a.id, [ContactData(email="eve@example.de", subscribed=True)], fields
        )
    assert [m.email for m in state.lists[list_a.id].members.values()] == ["anna@example.de"]


async def test_compliance_and_segment_refusals_belong_to_one_account(
    raw: httpx.AsyncClient,
    state: MailchimpState,
    other: str,
    make_client: Callable[..., MailchimpClient],
) -> None:
    """Addresses seeded as in compliance state or refused by the segment endpoint for one
    account are refused in its audiences only (the default account's sets, which tests seed
    directly, stay empty)."""
    for kind in ("compliance", "segment"):
        seeded = await raw.post(
            f"/_control/blocked/{kind}",
            json={"emails": [f"{kind}@example.de"], "account_id": OTHER_ACCOUNT},
        )
        assert seeded.status_code == 204
    assert state.compliance_emails == state.segment_rejected_emails == set()
    mine, theirs = make_client(), make_client(api_key=other)
    list_a, list_b = await mine.ensure_list("onoffice"), await theirs.ensure_list("onoffice")
    fields = await mine.ensure_fields(list_a.id)
    await theirs.ensure_fields(list_b.id)
    # The segment endpoint refuses to tag the address in the other account's audience only
    # (the client then tags it through the member endpoint, counted here).
    contacts = [
        ContactData(email="compliance@example.de", subscribed=True),
        ContactData(email="segment@example.de", subscribed=True, tags=["VIP"]),
    ]
    fallbacks = []
    for client, list_id in ((mine, list_a.id), (theirs, list_b.id)):
        before = state.request_counts[MEMBER_TAGS]
        await client.upsert_contacts(list_id, contacts, fields)
        fallbacks.append(state.request_counts[MEMBER_TAGS] - before)
    assert fallbacks == [0, 1]
    segment = subscriber_hash("segment@example.de")
    assert "VIP" in state.lists[list_a.id].members[segment].tags
    assert "VIP" in state.lists[list_b.id].members[segment].tags
    # Subscribing the address is refused only in the other account's audience ("Member In
    # Compliance State"): the batch left it out there, and a single subscribe fails.
    compliance = subscriber_hash("compliance@example.de")
    assert state.lists[list_a.id].members[compliance].status == "subscribed"
    assert compliance not in state.lists[list_b.id].members
    await mine.set_subscription(list_a.id, "compliance@example.de", False)
    await mine.set_subscription(list_a.id, "compliance@example.de", True)
    assert state.lists[list_a.id].members[compliance].status == "subscribed"
    with pytest.raises(ProviderError):
        await theirs.set_subscription(list_b.id, "compliance@example.de", True)
    assert compliance not in state.lists[list_b.id].members
