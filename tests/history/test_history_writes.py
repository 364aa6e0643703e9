"""Every onOffice address the webhook applier writes is in the person's consent history, with the
value written and the event as its source, whether the event was applied in a batch (an
unsubscribe on an address and its duplicate) or on its own (a sign-up that creates an address,
an email change, a sent campaign's delivered activities)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import auth
from tests.e2e.test_webhook_confirm import drained
from tests.e2e.test_webhooks import (
    MAILCHIMP_SEED,
    Hooked,
    at_mailchimp,
    connect,
    email_changed_at_mailchimp,
    fired_at,
    mailchimp_form,
)


@pytest.fixture
async def hooked(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Hooked]:
    world.onoffice.seed(MAILCHIMP_SEED)
    hooked = await connect(
        http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY, {"delivered": True}
    )
    yield hooked
    hooked.connector.stop()


async def history(http: httpx.AsyncClient, hooked: Hooked, email: str) -> list[dict[str, Any]]:
    answer = await http.get(
        f"{hooked.connector.url}/api/v1/contacts",
        params={"email": email},
        headers=auth(hooked.token),
    )
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["history"]
    return entries


def onoffice_writes(entries: list[dict[str, Any]]) -> set[tuple[str, int, str | None, str]]:
    return {
        (h["value"], h["address_id"], h["note"], h["source"])
        for h in entries
        if (h["kind"], h["side"]) == ("action", "onoffice")
    }


def event_ref(entries: list[dict[str, Any]]) -> str:
    """The id of the webhook event whose signal the history shows."""
    (ref,) = {h["source_ref"] for h in entries if (h["kind"], h["source"]) == ("signal", "webhook")}
    return str(ref)


async def test_every_onoffice_write_of_both_paths_is_in_the_history(
    world: World, hooked: Hooked, http: httpx.AsyncClient
) -> None:
    url, list_id = hooked.hook_url, hooked.list_id
    at_mailchimp(world, list_id, "anna@example.de", "unsubscribe")
    email_changed_at_mailchimp(world, list_id, "bob@example.de", "bob.new@example.de")
    at_mailchimp(world, list_id, "neu@example.de", "subscribe")
    for form in [
        mailchimp_form("unsubscribe", "anna@example.de", action="unsub", list_id=list_id),
        mailchimp_form("upemail", "", old_email="bob@example.de", new_email="bob.new@example.de"),
        mailchimp_form("subscribe", "neu@example.de", list_id=list_id),
    ]:
        assert (await http.post(url, data=form)).json()["stored"] == 1
    await drained(hooked, http)

    # Batched: the No on both of anna's addresses and their activity, from the event.
    anna = await history(http, hooked, "anna@example.de")
    assert onoffice_writes(anna) == {
        ("no", 1, None, "webhook"),
        ("no", 2, None, "webhook"),
        ("activity", 1, "unsubscribe", "webhook"),
        ("activity", 2, "unsubscribe", "webhook"),
    }
    assert {h["source_ref"] for h in anna if h["side"] == "onoffice"} == {event_ref(anna)}

    # On its own: the address created for the sign-up (with its Yes) and its activity.
    (new_id,) = [i for i, a in world.onoffice.addresses.items() if a.emails == ["neu@example.de"]]
    neu = await history(http, hooked, "neu@example.de")
    assert onoffice_writes(neu) == {
        ("yes", new_id, "created", "webhook"),
        ("activity", new_id, "subscribe", "webhook"),
    }
    assert {h["source_ref"] for h in neu if h["side"] == "onoffice"} == {event_ref(neu)}

    # On its own: the email change, under the old and the new email.
    assert world.onoffice.addresses[3].to_dict()["Email"].strip() == "bob.new@example.de"
    old = onoffice_writes(await history(http, hooked, "bob@example.de"))
    assert old == {("email", 3, "bob.new@example.de", "webhook")}
    moved = await history(http, hooked, "bob.new@example.de")
    assert onoffice_writes(moved) == {("email", 3, "bob@example.de", "webhook")}
    german = await http.get(
        f"{hooked.connector.url}/api/v1/contacts",
        params={"email": "bob.new@example.de"},
        headers=auth(hooked.token) | {"Accept-Language": "de"},
    )
    (text,) = [h["text"] for h in german.json()["history"] if h["side"] == "onoffice"]
    assert text.startswith("Connector hat in onOffice „E-Mail-Adresse geändert“ eingetragen")

    # A sent campaign: each recipient known in onOffice gets its delivered activity.
    recipients = ["bob.new@example.de", "stranger@example.de"]
    world.mailchimp.campaign_recipients["cmp7"] = (list_id, recipients)
    campaign = {
        "type": "campaign",
        "fired_at": fired_at(),
        "data[id]": "cmp7",
        "data[subject]": "Herbst",
        "data[status]": "sent",
        "data[list_id]": list_id,
    }
    assert (await http.post(url, data=campaign)).json()["stored"] == 1
    await drained(hooked, http)
    after = onoffice_writes(await history(http, hooked, "bob.new@example.de"))
    assert after - onoffice_writes(moved) == {("activity", 3, "delivered", "webhook")}
    assert await history(http, hooked, "stranger@example.de") == []
