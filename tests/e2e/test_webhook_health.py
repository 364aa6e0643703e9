"""Issue 18 items 3 and 4 over HTTP against the emulators: the webhook health check repairs a
webhook deleted at the provider, "via the API" switched on at Mailchimp and a Brevo webhook
missing an event, and says so in the status; a periodic check by a real worker; a Mailchimp
"delivered" chunk with one address id onOffice no longer knows writes the others."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World
from tests.e2e.harness import auth, connector_env
from tests.e2e.test_webhooks import Hooked, address, connect, eventually, fired_at

MC_AUTH = ("connector", DEFAULT_API_KEY)
BREVO_KEY = "test-key-de"


def mailchimp_hooks_url(world: World, list_id: str) -> str:
    return f"{world.mailchimp_url}/3.0/lists/{list_id}/webhooks"


async def mailchimp_hooks(http: httpx.AsyncClient, world: World, list_id: str) -> list[Any]:
    found = await http.get(mailchimp_hooks_url(world, list_id), auth=MC_AUTH)
    assert found.status_code == 200, found.text
    hooks: list[Any] = found.json()["webhooks"]
    return hooks


async def check_now(http: httpx.AsyncClient, hooked: Hooked) -> dict[str, Any]:
    answer = await http.post(
        f"{hooked.connector.url}/api/v1/connection/webhook/check", headers=auth(hooked.token)
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def status_webhook(http: httpx.AsyncClient, hooked: Hooked) -> dict[str, Any]:
    answer = await http.get(f"{hooked.connector.url}/api/v1/status", headers=auth(hooked.token))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()["webhook"]
    return found


@pytest.fixture
async def mailchimp_hooked(world: World, e2e_settings: Settings, http: httpx.AsyncClient) -> Any:
    world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
    hooked = await connect(http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY)
    yield hooked
    hooked.connector.stop()


class TestMailchimpWebhookHealth:
    async def test_a_webhook_deleted_at_mailchimp_is_registered_again(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        hooked = mailchimp_hooked
        assert (await status_webhook(http, hooked))["state"] == "unchecked"
        (hook,) = await mailchimp_hooks(http, world, hooked.list_id)
        deleted = await http.delete(
            f"{mailchimp_hooks_url(world, hooked.list_id)}/{hook['id']}", auth=MC_AUTH
        )
        assert deleted.status_code == 204

        checked = await check_now(http, hooked)
        assert checked["state"] == "repaired" and checked["problems"] == ["missing"]
        (again,) = await mailchimp_hooks(http, world, hooked.list_id)
        assert again["url"] == hook["url"] and again["id"] != hook["id"]
        assert again["sources"] == {"user": True, "admin": True, "api": False}
        assert all(again["events"][e] for e in ("subscribe", "unsubscribe", "profile"))
        assert again["events"]["campaign"] is False  # "delivered" activities are off

        status = await status_webhook(http, hooked)
        assert status["state"] == "repaired" and status["problems"] == ["missing"]
        assert status["checked_at"] and status["repaired_at"]
        assert "Mailchimp" in status["problems_text"] and status["summary"]
        assert status["last_event_at"] is None
        # The repaired webhook delivers: its events arrive, and the status shows when.
        form = {"type": "unsubscribe", "fired_at": fired_at(5), "data[email]": "bob@example.de"}
        form |= {"data[action]": "unsub", "data[list_id]": hooked.list_id}
        assert (await http.post(again["url"], data=form)).status_code == 200
        assert (await status_webhook(http, hooked))["last_event_at"] is not None
        assert world.mailchimp.spec_violations == []

    async def test_via_the_api_switched_on_at_mailchimp_is_switched_off_again(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        hooked = mailchimp_hooked
        (hook,) = await mailchimp_hooks(http, world, hooked.list_id)
        patched = await http.patch(
            f"{mailchimp_hooks_url(world, hooked.list_id)}/{hook['id']}",
            auth=MC_AUTH,
            json={"sources": {"api": True}},
        )
        assert patched.status_code == 200 and patched.json()["sources"]["api"] is True

        checked = await check_now(http, hooked)
        assert checked["state"] == "repaired" and checked["problems"] == ["source_on:api"]
        (after,) = await mailchimp_hooks(http, world, hooked.list_id)
        assert after["id"] == hook["id"]  # patched in place, the URL and id kept
        assert after["sources"] == {"user": True, "admin": True, "api": False}
        assert world.mailchimp.spec_violations == []


async def drop_brevo_event(
    http: httpx.AsyncClient, world: World, hook: dict[str, Any], event: str
) -> None:
    """Switch one event of our Brevo webhook off at Brevo (as in Brevo's UI)."""
    events = [e for e in hook["events"] if e != event]
    changed = await http.put(
        f"{world.brevo_url}/v3/webhooks/{hook['id']}",
        headers={"api-key": BREVO_KEY},
        json={"events": events},
    )
    assert changed.status_code == 204, changed.text


class TestBrevoWebhookHealth:
    async def test_a_brevo_webhook_missing_an_event_is_repaired(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(1, "anna@example.de")])
        hooked = await connect(http, world, e2e_settings, "brevo", BREVO_KEY, {"opened": True})
        try:
            (hook,) = world.brevo.accounts[BREVO_KEY].webhooks.values()
            assert "opened" in hook["events"] and "delivered" not in hook["events"]
            await drop_brevo_event(http, world, hook, "unsubscribed")

            checked = await check_now(http, hooked)
            assert checked["state"] == "repaired"
            assert checked["problems"] == ["event_off:unsubscribed"]
            (after,) = world.brevo.accounts[BREVO_KEY].webhooks.values()
            assert after["id"] == hook["id"] and "unsubscribed" in after["events"]
            assert after["auth"] == hook["auth"]  # the bearer secret kept
            status = await status_webhook(http, hooked)
            assert status["state"] == "repaired" and "unsubscribed" in status["problems_text"]
            assert world.brevo.violations == []
        finally:
            hooked.connector.stop()

    async def test_brevo_spam_is_registered_and_a_webhook_without_it_repaired(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(1, "anna@example.de")])
        hooked = await connect(http, world, e2e_settings, "brevo", BREVO_KEY)
        try:
            (hook,) = world.brevo.accounts[BREVO_KEY].webhooks.values()
            assert "spam" in hook["events"]  # a complaint blacklists: an opt-out
            # A webhook registered before `spam` was asked for.
            await drop_brevo_event(http, world, hook, "spam")
            checked = await check_now(http, hooked)
            assert checked["state"] == "repaired" and checked["problems"] == ["event_off:spam"]
            (after,) = world.brevo.accounts[BREVO_KEY].webhooks.values()
            assert after["id"] == hook["id"] and "spam" in after["events"]
            assert world.brevo.violations == []
        finally:
            hooked.connector.stop()


@pytest.mark.usefixtures("redis")
class TestPeriodicCheck:
    async def test_a_worker_checks_each_connection_and_repairs_it(
        self,
        world: World,
        mailchimp_hooked: Hooked,
        redis_url: str,
        http: httpx.AsyncClient,
    ) -> None:
        """The worker's health sweep (run at its start, then every minute) checks every
        connection not checked for PROVIDER_RECONCILE_INTERVAL_S (a saved one at once)."""
        hooked = mailchimp_hooked
        world.mailchimp.lists[hooked.list_id].webhooks.clear()  # deleted in Mailchimp's UI
        settings = hooked.connector.settings.model_copy(update={"REDIS_URL": redis_url})
        hooked.connector.env = connector_env(settings)  # the worker's (stopped with the API)
        hooked.connector.start_worker()
        states: list[str] = []

        async def repaired() -> bool:
            states.append((await status_webhook(http, hooked))["state"])
            return states[-1] == "repaired"

        await eventually_async(repaired, "the periodic check")
        (hook,) = world.mailchimp.lists[hooked.list_id].webhooks.values()
        assert hook["sources"]["api"] is False


async def eventually_async(check: Any, what: str, wait_s: float = 40) -> None:
    deadline = time.monotonic() + wait_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


class TestDeliveredChunk:
    async def test_an_address_onoffice_no_longer_knows_fails_alone(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(i, f"r{i}@example.de") for i in range(1, 7)])
        hooked = await connect(
            http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY, {"delivered": True}
        )
        try:
            (hook,) = world.mailchimp.lists[hooked.list_id].webhooks.values()
            assert hook["events"]["campaign"] is True  # the activity switched it on
            del world.onoffice.addresses[3]  # deleted in onOffice after the sync
            recipients = [f"r{i}@example.de" for i in range(1, 7)]
            world.mailchimp.campaign_recipients["cmp7"] = (hooked.list_id, recipients)
            form = {
                "type": "campaign",
                "fired_at": fired_at(),
                "data[id]": "cmp7",
                "data[subject]": "Winter",
                "data[status]": "sent",
                "data[list_id]": hooked.list_id,
            }
            assert (await http.post(hooked.hook_url, data=form)).json()["stored"] == 1
            await eventually(lambda: len(world.onoffice.activities) == 5, "5 delivered activities")
            logged = {a["address_id"] for a in world.onoffice.activities}
            assert logged == {1, 2, 4, 5, 6}
            answer = await http.get(
                f"{hooked.connector.url}/api/v1/status", headers=auth(hooked.token)
            )
            pending = answer.json()["pending"]
            assert pending["failed_inbound_events"] == 0 and pending["inbound_events"] == 0
        finally:
            hooked.connector.stop()
