"""Full sync end to end: HTTP API, real arq worker on Redis, PostgreSQL, emulators."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections import Counter
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.mailchimp import DEFAULT_API_KEY, subscriber_hash
from emulators.onoffice_data import generate_address_book
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Tenant,
    auth,
    connect_tenant,
    run_full_sync,
    start_connector,
    wait_for_run,
)

INVALID = {"max.mustermann@", "kein email", "a@b", "@example.de", "müller at web.de"}


def expected_outcome(addresses: list[dict[str, Any]]) -> dict[str, Any]:
    """What a correct full sync must produce, computed independently of the connector."""
    subscribed = [
        a
        for a in sorted(addresses, key=lambda a: a["id"])
        if str(a.get("newsletter_aktiv")) == "1" and str(a.get("Status", "1")) == "1"
    ]
    # One person across duplicates: an active address with No (0) or Cancellation (2), first
    # seen, opts the person out, whatever the case and surrounding spaces of its email (the
    # generator's stray spaces are one leading space at most).
    opted_out = {
        str(a.get("Email") or "").strip().casefold()
        for a in addresses
        if str(a.get("newsletter_aktiv")) in ("0", "2") and str(a.get("Status", "1")) == "1"
    }
    owners: dict[str, int] = {}
    problems: dict[int, str] = {}
    claimed: set[str] = set()
    for a in subscribed:
        email = (a.get("Email") or "").strip().lower()
        if not email:
            problems[a["id"]] = "missing_email"
        elif email in INVALID:
            problems[a["id"]] = "invalid_email"
        elif email in claimed:
            problems[a["id"]] = "duplicate"
        elif email in opted_out:
            claimed.add(email)
            problems[a["id"]] = "opted_out"
        else:
            claimed.add(email)
            owners[email] = a["id"]
    return {"total": len(subscribed), "owners": owners, "problems": problems}


@pytest.mark.usefixtures("redis")
class TestMailchimpFullSync:
    async def test_5000_awkward_addresses_end_exactly(
        self, world: World, e2e_settings: Settings, redis_url: str, http: httpx.AsyncClient
    ) -> None:
        book = generate_address_book(5000, seed=7)
        world.onoffice.seed(book)
        addresses = [a.to_dict() for a in world.onoffice.addresses.values()]
        expected = expected_outcome(addresses)
        emails = sorted(expected["owners"])
        # Provider-side rejections seeded at Mailchimp.
        compliance, forgotten = emails[10], emails[20]
        world.mailchimp.compliance_emails.add(compliance)
        world.mailchimp.forgotten_emails.add(forgotten)

        connector = start_connector(
            e2e_settings.model_copy(update={"REDIS_URL": redis_url}), workers=2
        )
        try:
            tenant = Tenant("W1", "t" * 32, "s" * 64, "claim-1")
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            assert DEFAULT_API_KEY not in str(saved)
            list_id = saved["list_id"]
            # Members already in Mailchimp with tags a marketer set there: valid onOffice tag
            # keys (or labels) flow back, unknown tags and `onoffice` do not.
            pulled = {emails[30]: ["Investor"], emails[31]: ["Käufer", "VIP", "onoffice"]}
            for email, tags in pulled.items():
                world.mailchimp.seed_member(list_id, email, tags=tags)

            started = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            assert started.status_code == 202, started.text
            run_id = started.json()["id"]
            again = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            assert again.status_code == 409
            run = await wait_for_run(http, connector.url, token, run_id)
            assert run["status"] == "completed", run

            counts = run["counts"]
            problems = expected["problems"]
            kinds = Counter(problems.values())
            assert counts["onoffice_newsletter_total"] == expected["total"]
            assert counts["duplicates"] == kinds["duplicate"]
            assert counts["opted_out"] == kinds["opted_out"] > 0
            assert counts["missing_emails"] == kinds["missing_email"]
            assert counts["invalid_emails"] == kinds["missing_email"] + kinds["invalid_email"]
            assert counts["rejected"] == 2
            assert counts["synced"] == len(emails) - 2
            assert counts["created"] == len(emails) - 2 - len(pulled)
            assert counts["updated"] == len(pulled)
            assert counts["reconciled"] is True
            batch_calls = world.mailchimp.request_counts["POST /3.0/lists/{list_id}"]
            assert batch_calls == run["progress"]["batches_total"], world.mailchimp.request_counts
            # Tags cost one segment request per tag per 500 members needing it across the run
            # (not per batch), and nothing per contact.
            owner_rows = {a["id"]: a for a in addresses}
            needing = Counter(
                tag
                for email, address_id in expected["owners"].items()
                if email not in (compliance, forgotten)
                for tag in set(owner_rows[address_id].get("NewsletterTag") or [])
            )
            assert len(needing) >= 2, needing
            segment_calls = world.mailchimp.request_counts[
                "POST /3.0/lists/{list_id}/segments/{segment_id}"
            ]
            assert segment_calls == sum(math.ceil(n / 500) for n in needing.values())
            assert segment_calls < batch_calls * len(needing)
            member_tags = "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"
            assert world.mailchimp.request_counts.get(member_tags, 0) <= 1  # the label rename
            assert (
                counts["synced"]
                + counts["duplicates"]
                + counts["invalid_emails"]
                + counts["rejected"]
                + counts["opted_out"]
                == counts["onoffice_newsletter_total"]
            )

            # The provider's final state equals the expected set exactly.
            members = world.mailchimp.lists[list_id].members
            subscribed = {m.email.lower(): m for m in members.values() if m.status == "subscribed"}
            assert set(subscribed) == set(emails) - {compliance, forgotten}
            by_id = {a["id"]: a for a in addresses}
            for email, address_id in list(expected["owners"].items())[:300]:
                if email in (compliance, forgotten):
                    continue
                member = subscribed[email]
                a = by_id[address_id]
                assert member.merge_fields.get("FNAME", "") == (a.get("Vorname") or "").strip()
                assert member.merge_fields.get("LNAME", "") == (a.get("Name") or "").strip()
                tags = {t for t in member.tags}
                assert set(a.get("NewsletterTag") or []) <= tags
            for email, address_id in expected["owners"].items():
                if email not in (compliance, forgotten):
                    wanted = set(by_id[address_id].get("NewsletterTag") or [])
                    assert wanted <= set(subscribed[email].tags), email

            # Problem rows are exactly the excluded addresses (+ the two rejections).
            rows = (
                await http.get(
                    f"{connector.url}/api/v1/syncs/{run_id}/problems",
                    headers=auth(token),
                    params={"limit": 5000},
                )
            ).json()
            got = {r["address_id"]: r["kind"] for r in rows["items"]}
            want = dict(problems) | {
                expected["owners"][compliance]: "rejected",
                expected["owners"][forgotten]: "rejected",
            }
            assert got == want
            # The rejections by code (Mailchimp's table), its own words only as the original.
            row_of = {r["address_id"]: r for r in rows["items"]}
            refused = [row_of[expected["owners"][e]] for e in (compliance, forgotten)]
            assert [r["reason_code"] for r in refused] == [
                "provider_compliance",
                "provider_forgotten",
            ]
            assert all(r["detail"].startswith("Original message of Mailchimp: ") for r in refused)
            csv_text = (
                await http.get(
                    f"{connector.url}/api/v1/syncs/{run_id}/problems",
                    headers=auth(token),
                    params={"format": "csv"},
                )
            ).text
            assert len(list(csv.DictReader(io.StringIO(csv_text)))) == len(want)

            # Tags flowed back to onOffice, only where the set changed.
            tags_of = {
                a.id: set(a.to_dict().get("NewsletterTag") or [])
                for a in world.onoffice.addresses.values()
            }
            by_address = {a["id"]: set(a.get("NewsletterTag") or []) for a in addresses}
            investor = expected["owners"][emails[30]]
            buyer = expected["owners"][emails[31]]
            assert tags_of[investor] == by_address[investor] | {"Investor"}
            assert tags_of[buyer] == by_address[buyer] | {"Kaeufer"}
            changed = {i for i in (investor, buyer) if tags_of[i] != by_address[i]}
            assert counts["tags_pulled"] == len(changed)
            untouched = [i for i in expected["owners"].values() if i not in (investor, buyer)]
            assert all(tags_of[i] == by_address[i] for i in untouched)

            # A second run sends nothing.
            writes_before = _writes(world)
            second = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run2 = await wait_for_run(http, connector.url, token, second.json()["id"])
            assert run2["status"] == "completed", run2
            assert _writes(world) == writes_before
            assert run2["counts"]["unchanged"] == counts["synced"]
            assert run2["counts"]["tags_pulled"] == 0
            # The two rejected contacts are tried again (they may have been fixed since).
            assert run2["counts"]["rejected"] == 2
            again = (
                await http.get(
                    f"{connector.url}/api/v1/syncs/{run2['id']}/problems",
                    headers=auth(token),
                    params={"kind": "rejected"},
                )
            ).json()["items"]
            # Not sent again, the stored code kept: the same reasons, marked as repeated.
            assert sorted(r["reason_code"] for r in again) == [
                "provider_compliance",
                "provider_forgotten",
            ]
            assert all(r["reason"].endswith("(unchanged since the last attempt)") for r in again)
            assert all(r["detail"].startswith("Original message of Mailchimp: ") for r in again)

            # A tag removed in onOffice is removed at Mailchimp by the next run.
            address = world.onoffice.addresses[investor]
            before = set(address.to_dict().get("NewsletterTag") or [])
            world.onoffice.seed(
                [address.to_dict() | {"NewsletterTag": sorted(before - {"Investor"})}],
                replace=False,
            )
            third = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run3 = await wait_for_run(http, connector.url, token, third.json()["id"])
            assert run3["status"] == "completed", run3
            assert run3["counts"]["updated"] == 1
            member = world.mailchimp.lists[list_id].members[subscriber_hash(emails[30])]
            assert "Investor" not in member.tags
            assert set(member.tags) == before - {"Investor"}
            # ... and the run's tag pull-back does not put it back in onOffice (issue #17, N6).
            after = world.onoffice.addresses[investor].to_dict().get("NewsletterTag") or []
            assert set(after) == before - {"Investor"}
            assert run3["counts"]["tags_pulled"] == 0

            status = (await http.get(f"{connector.url}/api/v1/status", headers=auth(token))).json()
            assert status["counts"]["synced_contacts"] == counts["synced"]
            assert status["last_completed_sync"]["id"] == run3["id"]
        finally:
            connector.stop()


def _writes(world: World) -> int:
    counts = world.mailchimp.request_counts
    return sum(n for key, n in counts.items() if not key.startswith("GET"))


GREETING = {
    "de": {
        "Herr": "Sehr geehrter Herr",
        "Frau": "Sehr geehrte Frau",
        None: "Sehr geehrte Damen und Herren",
    },
    "en": {"Herr": "Dear Mr", "Frau": "Dear Ms", None: "Dear Sir or Madam"},
}
ATTRIBUTES = {
    "de": ("VORNAME", "NACHNAME", "ANREDE", "BRIEFANREDE"),
    "en": ("FIRSTNAME", "LASTNAME", "SALUTATION", "GREETING"),
}


@pytest.mark.usefixtures("redis")
class TestBrevoFullSync:
    @pytest.mark.parametrize("language", ["de", "en"])
    async def test_full_sync_uses_the_accounts_attributes(
        self,
        language: str,
        world: World,
        e2e_settings: Settings,
        redis_url: str,
        http: httpx.AsyncClient,
    ) -> None:
        world.onoffice.seed(generate_address_book(3000, seed=11))
        addresses = [a.to_dict() for a in world.onoffice.addresses.values()]
        expected = expected_outcome(addresses)
        connector = start_connector(
            e2e_settings.model_copy(update={"REDIS_URL": redis_url}), workers=2
        )
        try:
            tenant = Tenant(f"B{language}", "b" * 32, "c" * 64, "claim-b")
            key = f"test-key-{language}"
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "brevo", key
            )
            list_id = int(saved["list_id"])
            run = await run_full_sync(http, connector, token)
            assert run["status"] == "completed", run
            counts = run["counts"]
            kinds = Counter(expected["problems"].values())
            assert counts["onoffice_newsletter_total"] == expected["total"]
            assert counts["duplicates"] == kinds["duplicate"]
            assert counts["opted_out"] == kinds["opted_out"] > 0
            assert counts["invalid_emails"] == kinds["missing_email"] + kinds["invalid_email"]
            assert counts["rejected"] == 0
            assert counts["synced"] == len(expected["owners"])
            assert counts["reconciled"] is True

            account = world.brevo.accounts[key]
            in_list = {c.email for c in account.contacts.values() if list_id in c.list_ids}
            assert in_list == set(expected["owners"])
            first, last, salutation, greeting = ATTRIBUTES[language]
            by_id = {a["id"]: a for a in addresses}
            checked = Counter[str]()
            for email, address_id in expected["owners"].items():
                a = by_id[address_id]
                attrs = account.contacts[email].attributes
                if (a.get("Vorname") or "").strip():
                    assert attrs[first] == a["Vorname"].strip()
                if (a.get("Name") or "").strip():
                    assert attrs[last] == a["Name"].strip()
                anrede = a.get("Anrede") or ""
                # The address's own language wins over the account's.
                lang = {"DEU": "de", "ENG": "en"}.get(a.get("SpracheKontakt") or "", language)
                if anrede in ("Herr", "Frau") and (a.get("Name") or "").strip():
                    assert attrs[greeting].startswith(GREETING[lang][anrede]), attrs
                    assert attrs[greeting].endswith(a["Name"].strip())
                    assert attrs[salutation] == anrede
                    checked[anrede] += 1
                elif anrede in ("Firma", ""):
                    assert attrs[greeting] == GREETING[lang][None]
                    checked["other"] += 1
            assert min(checked.values()) > 10
            assert world.brevo.violations == []

            writes = _brevo_writes(world)
            second = await http.post(f"{connector.url}/api/v1/syncs", headers=auth(token))
            run2 = await wait_for_run(http, connector.url, token, second.json()["id"])
            assert run2["status"] == "completed" and run2["counts"]["unchanged"] == counts["synced"]
            assert _brevo_writes(world) == writes
        finally:
            connector.stop()


def _brevo_writes(world: World) -> int:
    return sum(n for key, n in world.brevo.request_counts.items() if not key.startswith("GET"))


class TestStaleContacts:
    async def test_a_full_sync_unsubscribes_who_left_newsletter_yes(
        self, world: World, e2e_settings: Settings, http: httpx.AsyncClient
    ) -> None:
        """onOffice is the master: without any incremental signal, the next full sync
        unsubscribes contacts whose address is no longer newsletter Yes; an implausibly large
        share is held back with a warning unless the run is forced."""
        from tests.e2e.test_webhooks import address

        world.onoffice.seed([address(i, f"s{i}@example.de") for i in range(1, 201)])
        connector = start_connector(e2e_settings)
        try:
            tenant = Tenant("S1", "s" * 32, "t" * 64, "claim-s")
            token, saved = await connect_tenant(
                http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
            )
            members = world.mailchimp.lists[saved["list_id"]].members
            assert (await run_full_sync(http, connector, token))["counts"]["synced"] == 200
            # Two leave the newsletter, one is archived: quietly, no webhook, no poll.
            world.onoffice.seed(
                [
                    address(1, "s1@example.de", newsletter="0"),
                    address(2, "s2@example.de", newsletter="2"),
                    address(3, "s3@example.de", Status="0"),
                ],
                replace=False,
            )
            run = await run_full_sync(http, connector, token)
            assert run["status"] == "completed", run
            assert run["counts"]["unsubscribed"] == 3 and run["warning"] is None
            assert run["counts"]["reconciled"] is True
            status = {m.email: m.status for m in members.values()}
            assert [status[f"s{i}@example.de"] for i in (1, 2, 3, 4)] == [
                "unsubscribed",
                "unsubscribed",
                "unsubscribed",
                "subscribed",
            ]
            # Half the list at once looks like a broken answer: held back, with a warning.
            world.onoffice.seed(
                [address(i, f"s{i}@example.de", newsletter="0") for i in range(4, 104)],
                replace=False,
            )
            run = await run_full_sync(http, connector, token)
            assert run["counts"]["unsubscribed"] == 0
            assert run["counts"]["held_unsubscribes"] == 100
            assert "approve" in run["warning"]
            assert members[subscriber_hash("s50@example.de")].status == "subscribed"
            # Approving unsubscribes exactly those contacts and sends nothing else.
            before = dict(world.mailchimp.request_counts)
            approved = await http.post(
                f"{connector.url}/api/v1/syncs/{run['id']}/approve-unsubscribes",
                headers=auth(token),
            )
            assert approved.status_code == 202, approved.text
            for _ in range(200):
                run = (
                    await http.get(f"{connector.url}/api/v1/syncs/{run['id']}", headers=auth(token))
                ).json()
                if run["counts"]["held_unsubscribes"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert run["counts"]["unsubscribed"] == 100 and run["warning"] is None
            assert members[subscriber_hash("s50@example.de")].status == "unsubscribed"
            batch = "POST /3.0/lists/{list_id}"
            assert world.mailchimp.request_counts.get(batch, 0) == before.get(batch, 0)
            again = await http.post(
                f"{connector.url}/api/v1/syncs/{run['id']}/approve-unsubscribes",
                headers=auth(token),
            )
            assert again.status_code == 409
        finally:
            connector.stop()
