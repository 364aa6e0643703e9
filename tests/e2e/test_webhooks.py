"""Provider webhooks reach onOffice: stored first, applied in order, no echoes, no loss."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.mailchimp.state import subscriber_hash
from emulators.onoffice import Fault as OnOfficeFault
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    start_connector,
)


@dataclass
class Hooked:
    connector: Connector
    token: str
    hook_url: str
    list_id: str


def address(i: int, email: str, newsletter: str = "1", **kw: Any) -> dict[str, Any]:
    return {
        "id": i,
        "Email": email,
        "Vorname": f"V{i}",
        "Name": f"N{i}",
        "Anrede": "Frau",
        "newsletter_aktiv": newsletter,
        "Status": "1",
        **kw,
    }


async def eventually(check: Callable[[], bool], what: str, wait_s: float = 30) -> None:
    deadline = time.monotonic() + wait_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def newsletter(world: World, address_id: int) -> str:
    return str(world.onoffice.addresses[address_id].to_dict()["newsletter_aktiv"])


def activities(world: World, address_id: int) -> list[dict[str, Any]]:
    return [a for a in world.onoffice.activities if a["address_id"] == address_id]


async def connect(
    http: httpx.AsyncClient,
    world: World,
    settings: Settings,
    provider: str,
    key: str,
    activities_on: dict[str, bool] | None = None,
) -> Hooked:
    connector = start_connector(settings)
    tenant = Tenant("H1", "h" * 32, "i" * 64, "claim-h")
    token, saved = await connect_tenant(
        http, connector, world.onoffice_url, tenant, provider, key, activities_on
    )
    list_id = saved["list_id"]
    if provider == "mailchimp":
        (hook,) = world.mailchimp.lists[list_id].webhooks.values()
    else:
        (hook,) = world.brevo.accounts[key].webhooks.values()
    run = await run_full_sync(http, connector, token)
    assert run["status"] == "completed", run
    return Hooked(connector, token, hook["url"], list_id)


def fired_at(delta_s: float = 0) -> str:
    """Mailchimp's `fired_at` (UTC, to the second), `delta_s` from now."""
    return datetime.fromtimestamp(time.time() + delta_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def at_mailchimp(world: World, list_id: str, email: str, action: str, delta_s: float = 0) -> None:
    """What a person or an admin does at Mailchimp (`MailchimpState.member_action`) at the time
    its webhook's `fired_at(delta_s)` names: the connector confirms each webhook against the
    member's state before it acts, so a test makes the change before it sends the news."""
    at = datetime.fromtimestamp(time.time() + delta_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    world.mailchimp.member_action(list_id, email, action, at=at)


def mailchimp_form(kind: str, email: str, **data: str) -> dict[str, str]:
    form = {"type": kind, "fired_at": fired_at(), "data[email]": email}
    form |= {f"data[{k}]": v for k, v in data.items()}
    return form


def email_changed_at_mailchimp(world: World, list_id: str, old: str, new: str) -> None:
    """A person changes their email at Mailchimp (the member keeps its id)."""
    audience = world.mailchimp.lists[list_id]
    member = audience.members.pop(subscriber_hash(old))
    member.email = new
    audience.members[member.id] = member


# anna with a duplicate, bob, and carl who said No.
MAILCHIMP_SEED = [
    address(1, "anna@example.de"),
    address(2, " Anna@Example.de "),  # a duplicate of 1
    address(3, "bob@example.de"),
    address(4, "carl@example.de", newsletter="0"),
]


@pytest.fixture
async def mailchimp_hooked(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Hooked]:
    world.onoffice.seed(MAILCHIMP_SEED)
    hooked = await connect(http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY)
    yield hooked
    hooked.connector.stop()


class TestMailchimpEvents:
    async def test_unsubscribe_reaches_every_address_with_that_email_once(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        at_mailchimp(world, mailchimp_hooked.list_id, "anna@example.de", "unsubscribe")
        form = mailchimp_form(
            "unsubscribe",
            "anna@example.de",
            action="unsub",
            reason="manual",
            list_id=mailchimp_hooked.list_id,
        )
        first = await http.post(mailchimp_hooked.hook_url, data=form)
        assert first.status_code == 200 and first.json()["stored"] == 1
        await eventually(lambda: newsletter(world, 1) == "0", "the unsubscribe")
        assert newsletter(world, 2) == "0"  # the duplicate too: no lost unsubscribe
        await eventually(lambda: len(activities(world, 1)) == 1, "the activity")
        (activity,) = activities(world, 1)
        assert activity["actionkind"] == "Newsletter" and activity["actiontype"] == "nicht bestellt"
        assert "Mailchimp" in activity["note"] and "manual" in activity["note"]
        # A redelivery is recognised and changes nothing.
        again = await http.post(mailchimp_hooked.hook_url, data=form)
        assert again.json()["stored"] == 0
        await asyncio.sleep(0.5)
        assert len(activities(world, 1)) == 1

    async def test_a_new_subscriber_becomes_an_onoffice_address(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        world.mailchimp.seed_member(
            mailchimp_hooked.list_id, "neu@example.de", merge_fields={"FNAME": "Nina"}
        )
        form = mailchimp_form(
            "subscribe", "neu@example.de", **{"merges][FNAME": "Nina", "merges][LNAME": "Neu"}
        )
        assert (await http.post(mailchimp_hooked.hook_url, data=form)).status_code == 200

        def created() -> bool:
            return any(
                a.to_dict().get("Email", "").strip() == "neu@example.de"
                for a in world.onoffice.addresses.values()
            )

        await eventually(created, "the new address")
        new = next(
            a.to_dict()
            for a in world.onoffice.addresses.values()
            if a.to_dict().get("Email", "").strip() == "neu@example.de"
        )
        assert (new["Vorname"], new["Name"], str(new["newsletter_aktiv"])) == ("Nina", "Neu", "1")
        await eventually(lambda: len(activities(world, new["id"])) == 1, "the activity")
        assert activities(world, new["id"])[0]["actiontype"] == "bestellt"

    async def test_echoes_change_nothing(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        url = mailchimp_hooked.hook_url
        # bob is subscribed in onOffice and at Mailchimp: a subscribe is an echo.
        await http.post(url, data=mailchimp_form("subscribe", "bob@example.de"))
        # carl is "No" in onOffice: an unsubscribe for him is an echo as well.
        await http.post(url, data=mailchimp_form("unsubscribe", "carl@example.de", action="unsub"))
        await self._drained(mailchimp_hooked, http)
        assert newsletter(world, 3) == "1" and newsletter(world, 4) == "0"
        assert world.onoffice.activities == []

    @pytest.mark.parametrize("action", ["delete", "archive"])
    async def test_a_deleted_or_archived_contact_becomes_not_specified(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient, action: str
    ) -> None:
        # A single archive/delete applies (a burst, such as "Archive All", is held instead).
        at_mailchimp(world, mailchimp_hooked.list_id, "bob@example.de", action)
        await http.post(
            mailchimp_hooked.hook_url,
            data=mailchimp_form("unsubscribe", "bob@example.de", action=action),
        )
        await eventually(lambda: newsletter(world, 3) == "4", "newsletter 'not specified'")

    async def test_an_onoffice_outage_delays_but_loses_nothing(
        self, world: World, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.faults.append(OnOfficeFault("http", 12, status=503))
        at_mailchimp(world, mailchimp_hooked.list_id, "bob@example.de", "unsubscribe")
        response = await http.post(
            mailchimp_hooked.hook_url,
            data=mailchimp_form("unsubscribe", "bob@example.de", action="unsub"),
        )
        assert response.status_code == 200  # stored and acknowledged while onOffice is down
        await eventually(lambda: newsletter(world, 3) == "0", "the delayed unsubscribe", 60)
        status = await self._drained(mailchimp_hooked, http)
        assert status["pending"]["failed_inbound_events"] == 0

    async def test_bad_requests_are_refused_clearly(
        self, mailchimp_hooked: Hooked, http: httpx.AsyncClient
    ) -> None:
        base = mailchimp_hooked.connector.url
        unknown = await http.post(f"{base}/webhooks/mailchimp/nope", data={"type": "subscribe"})
        assert unknown.status_code == 404
        check = await http.get(f"{base}/webhooks/mailchimp/anything")
        assert check.status_code == 200

    @staticmethod
    async def _drained(hooked: Hooked, http: httpx.AsyncClient) -> dict[str, Any]:
        for _ in range(300):
            status = (
                await http.get(f"{hooked.connector.url}/api/v1/status", headers=auth(hooked.token))
            ).json()
            if status["pending"]["inbound_events"] == 0:
                return dict(status)
            await asyncio.sleep(0.1)
        raise AssertionError("events were not applied")


class TestBrevoEvents:
    async def test_optional_activities_follow_the_connection_options(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
        hooked = await connect(http, world, e2e_settings, "brevo", "test-key-de", {"opened": True})
        try:
            (hook,) = world.brevo.accounts["test-key-de"].webhooks.values()
            headers = {"Authorization": f"Bearer {hook['auth']['token']}"}
            assert hook["auth"]["token"] not in hooked.hook_url  # a separate secret
            list_id = int(hooked.list_id)
            events = [
                {
                    "event": "opened",
                    "email": "anna@example.de",
                    "id": 1,
                    "ts_event": int(time.time()) + 0,
                    "camp_id": 7,
                    "campaign name": "Herbst",
                    "list_id": [list_id],
                },
                {
                    "event": "delivered",
                    "email": "anna@example.de",
                    "id": 2,
                    "ts_event": int(time.time()) + 10,
                    "camp_id": 7,
                    "list_id": [list_id],
                },
                {
                    "event": "unsubscribed",
                    "email": "bob@example.de",
                    "id": 3,
                    "ts_event": int(time.time()) + 20,
                    "camp_id": 7,
                    "list_id": [list_id],
                },
            ]
            wrong = await http.post(
                hooked.hook_url, json=events, headers={"Authorization": "Bearer wrong"}
            )
            assert wrong.status_code == 401
            bad = await http.post(
                hooked.hook_url,
                content=b"{not json",
                headers={**headers, "Content-Type": "application/json"},
            )
            assert bad.status_code == 400
            brevo = world.brevo
            brevo.contact_action(brevo.accounts["test-key-de"], "bob@example.de", "unsubscribe")
            stored = await http.post(hooked.hook_url, json=events, headers=headers)
            assert stored.status_code == 200, stored.text
            await eventually(lambda: newsletter(world, 2) == "0", "Brevo's unsubscribe")
            await eventually(lambda: len(activities(world, 1)) == 1, "the opened activity")
            await asyncio.sleep(0.5)
            kinds = [a["actiontype"] for a in activities(world, 1)]
            assert kinds == ["geöffnet"]  # delivered is switched off for this connection
        finally:
            hooked.connector.stop()


@pytest.mark.usefixtures("redis")
class TestOrderingOnWorkers:
    async def test_a_burst_is_applied_in_order_by_real_workers(
        self, world: World, e2e_settings: Settings, redis_url: str, http: httpx.AsyncClient
    ) -> None:
        world.onoffice.seed([address(1, "anna@example.de"), address(2, "bob@example.de")])
        settings = e2e_settings.model_copy(update={"REDIS_URL": redis_url})
        connector = start_connector(settings, workers=2)
        try:
            tenant = Tenant("W2", "w" * 32, "x" * 64, "claim-w")
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            list_id = saved["list_id"]
            (hook,) = world.mailchimp.lists[list_id].webhooks.values()
            kinds = ["unsubscribe", "subscribe"] * 7 + ["unsubscribe"]
            for n, kind in enumerate(kinds):
                # Each change happens at Mailchimp, then its webhook fires.
                at_mailchimp(world, list_id, "anna@example.de", kind, 10 + 10 * n)
                form = mailchimp_form(kind, "anna@example.de", action="unsub")
                form["fired_at"] = fired_at(10 + 10 * n)  # clearly ordered, after the sync
                response = await http.post(hook["url"], data=form)
                assert response.json()["stored"] == 1

            async def settled() -> dict[str, Any]:
                for _ in range(600):
                    status = (
                        await http.get(f"{connector.url}/api/v1/status", headers=auth(token))
                    ).json()
                    if status["pending"]["inbound_events"] == 0:
                        return dict(status)
                    await asyncio.sleep(0.1)
                raise AssertionError("events were not applied")

            status = await settled()
            assert status["pending"]["failed_inbound_events"] == 0
            assert newsletter(world, 1) == "0"  # the last state wins
            # Each event is confirmed against the state the drain reads when it gets to it: an
            # event the member's later state contradicts changes nothing, so onOffice follows
            # the states in order, never applying the same change twice in a row.
            types = [a["actiontype"] for a in activities(world, 1)]
            assert types and types[0] == types[-1] == "nicht bestellt", types
            assert all(a != b for a, b in itertools.pairwise(types)), types
        finally:
            connector.stop()


class TestMailchimpCampaignDelivered:
    @pytest.mark.parametrize("answer_lost", [False, True])
    async def test_a_sent_campaign_logs_delivered_for_its_recipients(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient, answer_lost: bool
    ) -> None:
        world.onoffice.seed(
            [address(i, f"r{i}@example.de") for i in range(1, 8)]
            + [address(9, "nobody@example.de", newsletter="0")]
        )
        hooked = await connect(
            http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY, {"delivered": True}
        )
        try:
            recipients = [f"r{i}@example.de" for i in range(1, 6)] + ["stranger@example.de"]
            world.mailchimp.campaign_recipients["cmp42"] = (hooked.list_id, recipients)
            form = {
                "type": "campaign",
                "fired_at": fired_at(),
                "data[id]": "cmp42",
                "data[subject]": "Herbst-Newsletter",
                "data[status]": "sent",
                "data[list_id]": hooked.list_id,
            }
            if answer_lost:  # onOffice writes the activities, but its answer is lost
                world.onoffice.faults.append(
                    OnOfficeFault("lost", 1, status=504, seconds=0, resourcetype="agentslog")
                )
            assert (await http.post(hooked.hook_url, data=form)).json()["stored"] == 1
            await eventually(
                lambda: sum(1 for a in world.onoffice.activities) == 5, "5 delivered activities"
            )
            if answer_lost:  # the retry finds them instead of writing them again
                await eventually(
                    lambda: any(
                        "agentslog" in {a["resourcetype"] for a in r["actions"]}
                        and all(a["actionid"].endswith(":read") for a in r["actions"])
                        for r in world.onoffice.recent_requests
                    ),
                    "the retry's check",
                )
                await asyncio.sleep(0.5)
            assert len(world.onoffice.activities) == 5
            logged = {a["address_id"]: a for a in world.onoffice.activities}
            assert set(logged) == {1, 2, 3, 4, 5}  # recipients known in onOffice only
            assert all(a["actiontype"] == "versendet" for a in logged.values())
            assert all("cmp42" in a["note"] for a in logged.values())
            assert world.mailchimp.spec_violations == []
        finally:
            hooked.connector.stop()
