"""Confirm before acting, over HTTP against the emulators (issue 18, item 1; security review H1,
consent review N10): a webhook is news, the provider's current state is the truth. Forged
events whose member state contradicts them change nothing in onOffice and nothing at the
provider, and are shown as "not confirmed"; a Brevo `contact_updated` that blacklists or
removes from the list reaches onOffice at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import auth
from tests.e2e.test_webhooks import (
    Hooked,
    activities,
    address,
    at_mailchimp,
    connect,
    email_changed_at_mailchimp,
    eventually,
    mailchimp_form,
    newsletter,
)

BREVO_KEY = "test-key-de"


async def drained(hooked: Hooked, http: httpx.AsyncClient) -> dict[str, Any]:
    """The status once no event is pending."""
    for _ in range(300):
        status = (
            await http.get(f"{hooked.connector.url}/api/v1/status", headers=auth(hooked.token))
        ).json()
        if status["pending"]["inbound_events"] == 0:
            return dict(status)
        await asyncio.sleep(0.1)
    raise AssertionError("events were not applied")


def writes(counts: dict[str, int]) -> dict[str, int]:
    return {k: n for k, n in counts.items() if not k.startswith("GET")}


@pytest.fixture
async def mailchimp_hooked(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Hooked]:
    world.onoffice.seed(
        [address(1, "anna@example.de"), address(2, "bob@example.de"), address(3, "c@example.de")]
    )
    hooked = await connect(http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY)
    yield hooked
    hooked.connector.stop()


class TestForgedMailchimpEvents:
    """Only the URL token: the member's state at Mailchimp contradicts each event."""

    async def test_forged_events_change_nothing_and_are_shown_as_not_confirmed(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        url, list_id = mailchimp_hooked.hook_url, mailchimp_hooked.list_id
        before_addresses = {i: a.to_dict() for i, a in world.onoffice.addresses.items()}
        before_writes = writes(dict(world.mailchimp.request_counts))
        forged = [
            # anna is subscribed at Mailchimp.
            mailchimp_form("unsubscribe", "anna@example.de", action="unsub", list_id=list_id),
            # bob is subscribed under his own address; the attacker's is unknown there.
            mailchimp_form(
                "upemail",
                "",
                old_email="bob@example.de",
                new_email="attacker@example.com",
                list_id=list_id,
            ),
            # Mailchimp has no such member: no onOffice address, no double-opt-in bypass.
            mailchimp_form("subscribe", "forged@example.com", list_id=list_id),
        ]
        for form in forged:
            response = await http.post(url, data=form)
            assert response.status_code == 200 and response.json()["stored"] == 1
        status = await drained(mailchimp_hooked, http)

        after = {i: a.to_dict() for i, a in world.onoffice.addresses.items()}
        assert after == before_addresses  # no address changed, none created
        assert world.onoffice.activities == []
        members = world.mailchimp.lists[list_id].members.values()
        assert {m.email: m.status for m in members} == {
            "anna@example.de": "subscribed",
            "bob@example.de": "subscribed",
            "c@example.de": "subscribed",
        }
        # Nothing written at the provider (the state reads only); nothing left to push.
        assert writes(dict(world.mailchimp.request_counts)) == before_writes
        assert status["unconfirmed_total"] == 3
        reasons = {e["event"]: e["reason"] for e in status["unconfirmed_events"]}
        assert reasons == {
            "unsubscribe": "not confirmed: Mailchimp shows subscribed, not an opt-out",
            "upemail": "not confirmed: Mailchimp has no contact attacker@example.com",
            "subscribe": "not confirmed: Mailchimp shows no such contact, not subscribed",
        }
        # For the status page, which names them in the user's language.
        shown = {(e["claimed"], e["new_email"], e["shown"]) for e in status["unconfirmed_events"]}
        assert shown == {
            ("unsubscribe", None, "subscribed"),
            ("email_changed", "attacker@example.com", "none"),
            ("subscribe", None, "none"),
        }

    async def test_the_same_events_made_at_mailchimp_are_applied(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        url, list_id = mailchimp_hooked.hook_url, mailchimp_hooked.list_id
        at_mailchimp(world, list_id, "anna@example.de", "unsubscribe")
        email_changed_at_mailchimp(world, list_id, "bob@example.de", "bob.new@example.de")
        at_mailchimp(world, list_id, "neu@example.de", "subscribe")
        for form in [
            mailchimp_form("unsubscribe", "anna@example.de", action="unsub", list_id=list_id),
            mailchimp_form(
                "upemail",
                "",
                old_email="bob@example.de",
                new_email="bob.new@example.de",
                list_id=list_id,
            ),
            mailchimp_form("subscribe", "neu@example.de", list_id=list_id),
        ]:
            assert (await http.post(url, data=form)).json()["stored"] == 1
        status = await drained(mailchimp_hooked, http)
        assert status["unconfirmed_total"] == 0
        assert newsletter(world, 1) == "0"
        assert world.onoffice.addresses[2].to_dict()["Email"].strip() == "bob.new@example.de"
        created = [a for a in world.onoffice.addresses.values() if a.emails == ["neu@example.de"]]
        assert len(created) == 1


@pytest.fixture
async def brevo_hooked(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Hooked]:
    world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
    hooked = await connect(http, world, e2e_settings, "brevo", BREVO_KEY)
    yield hooked
    hooked.connector.stop()


def contact_updated(email: str, n: int) -> dict[str, Any]:
    """Brevo's `contact_updated`: no list, no state, the UI as its source."""
    return {
        "id": 1,
        "email": email,
        "event": "contact_updated",
        "key": "k",
        "content": {"name": "x"},
        "date": "2026-01-01 00:00:00",
        "ts": int(time.time()) + n,
        "api_key_name": "",
    }


def brevo_world(world: World) -> tuple[Any, Any, dict[str, str]]:
    """The Brevo emulator, the account and the headers of a delivery to our webhook."""
    account = world.brevo.accounts[BREVO_KEY]
    (hook,) = account.webhooks.values()
    return world.brevo, account, {"Authorization": f"Bearer {hook['auth']['token']}"}


class TestBrevoContactUpdated:
    async def test_a_blacklist_and_a_list_removal_in_brevo_reach_onoffice_at_once(
        self, world: World, brevo_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        brevo, account, headers = brevo_world(world)
        # In Brevo's UI: anna is blacklisted, bob is removed from the list.
        brevo.contact_action(account, "anna@example.de", "unsubscribe")
        bob = account.contacts["bob@example.de"]
        bob.list_ids.discard(int(brevo_hooked.list_id))
        account.members[int(brevo_hooked.list_id)].pop(bob.id, None)
        events = [contact_updated("anna@example.de", 1), contact_updated("bob@example.de", 2)]
        stored = await http.post(brevo_hooked.hook_url, json=events, headers=headers)
        assert stored.status_code == 200, stored.text
        await eventually(lambda: newsletter(world, 1) == "0", "anna's blacklist in onOffice")
        await eventually(lambda: newsletter(world, 2) == "4", "bob's removal ('not specified')")
        status = await drained(brevo_hooked, http)
        assert status["unconfirmed_total"] == 0
        assert [a["actiontype"] for a in activities(world, 1)] == ["nicht bestellt"]

    async def test_a_forged_contact_updated_changes_nothing(
        self, world: World, brevo_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        account = world.brevo.accounts[BREVO_KEY]
        (hook,) = account.webhooks.values()
        headers = {"Authorization": f"Bearer {hook['auth']['token']}"}
        events = [contact_updated("anna@example.de", 1)]  # anna is subscribed in Brevo
        assert (await http.post(brevo_hooked.hook_url, json=events, headers=headers)).is_success
        await drained(brevo_hooked, http)
        assert newsletter(world, 1) == "1" and world.onoffice.activities == []

    async def test_an_email_changed_in_brevo_moves_the_onoffice_email(
        self, world: World, brevo_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        _, _, headers = brevo_world(world)
        # In Brevo: anna's email is changed; bob's change is forged (Brevo still has bob).
        changed = await http.put(
            f"{world.brevo_url}/v3/contacts/anna@example.de",
            headers={"api-key": BREVO_KEY},
            json={"attributes": {"EMAIL": "anna.neu@example.de"}},
        )
        assert changed.status_code == 204, changed.text
        events = [
            contact_updated("anna@example.de", 1) | {"content": {"EMAIL": "anna.neu@example.de"}},
            contact_updated("bob@example.de", 2) | {"content": {"EMAIL": "mallory@example.de"}},
        ]
        stored = await http.post(brevo_hooked.hook_url, json=events, headers=headers)
        assert stored.status_code == 200, stored.text
        status = await drained(brevo_hooked, http)
        emails = {n: world.onoffice.addresses[n].to_dict()["Email"].strip() for n in (1, 2)}
        assert emails == {1: "anna.neu@example.de", 2: "bob@example.de"}
        assert status["unconfirmed_total"] == 1
        (shown,) = status["unconfirmed_events"]
        assert "mallory@example.de" in shown["reason"]

    async def test_a_spam_complaint_is_applied_as_the_blacklist_brevo_shows(
        self, world: World, brevo_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        brevo, account, headers = brevo_world(world)
        brevo.contact_action(account, "anna@example.de", "unsubscribe")  # Brevo blacklists
        spam = [
            {**SPAM, "email": "anna@example.de", "ts_event": int(time.time())},
            {**SPAM, "email": "bob@example.de", "ts_event": int(time.time())},  # bob: subscribed
        ]
        assert (await http.post(brevo_hooked.hook_url, json=spam, headers=headers)).is_success
        await eventually(lambda: newsletter(world, 1) == "0", "anna's complaint in onOffice")
        status = await drained(brevo_hooked, http)
        assert newsletter(world, 2) == "1" and activities(world, 2) == []
        assert status["unconfirmed_total"] == 1


# Brevo's `spam` webhook (docs/brevo-api.md): a campaign event, no list.
SPAM = {
    "id": 123,
    "camp_id": 45,
    "campaign name": "My First Campaign",
    "date_sent": "2020-10-09 00:00:00",
    "date_event": "2020-10-09 00:00:00",
    "event": "spam",
    "reason": "undesired",
    "tag": "",
}
