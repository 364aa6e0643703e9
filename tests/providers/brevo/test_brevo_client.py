"""BrevoClient against the Brevo emulator (every request is checked against the spec)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from emulators.brevo import BrevoConfig, BrevoState, create_app
from providers.base import (
    ContactData,
    FieldMapping,
    NewsletterProvider,
    ProviderTransientError,
    RejectReason,
    UpsertOutcome,
)
from providers.brevo import BrevoAuthError, BrevoClient, BrevoRequestError

BASE = "http://brevo.test/v3"


@dataclass
class Env:
    state: BrevoState
    http: httpx.AsyncClient

    def client(self, key: str = "key-de", **kw: object) -> BrevoClient:
        options: dict[str, object] = {
            "requests_per_second": 1000.0,
            "backoff_initial": 0.01,
            "max_retry_wait": 0.2,
            "process_poll_interval": 0.01,
            "single_upsert_threshold": 3,
        }
        options.update(kw)
        return BrevoClient(api_key=key, base_url=BASE, http=self.http, **options)  # type: ignore[arg-type]

    def contact(self, email: str, key: str = "key-de") -> dict[str, object]:
        found = self.state.accounts[key].contacts[email]
        return found.to_api()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    state = BrevoState(BrevoConfig(contacts_rps=0))
    state.add_account("key-de", "de")
    state.add_account("key-en", "en")
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport) as http:
        yield Env(state, http)
    assert state.violations == [], state.violations


async def setup_list(client: BrevoClient) -> tuple[str, FieldMapping]:
    await client.check_key()
    info = await client.ensure_list()
    return info.id, await client.ensure_fields(info.id)


def people(n: int, *, subscribed: bool = True, prefix: str = "p") -> list[ContactData]:
    return [
        ContactData(
            email=f"{prefix}{i}@example.de",
            first_name=f"Vor{i}",
            last_name=f"Nach{i}",
            salutation="Frau",
            greeting=f"Sehr geehrte Frau Nach{i}",
            subscribed=subscribed,
        )
        for i in range(n)
    ]


async def test_implements_protocol(env: Env) -> None:
    assert isinstance(env.client(), NewsletterProvider)


class TestAccount:
    async def test_check_key_language_from_country(self, env: Env) -> None:
        info = await env.client().check_key()
        assert info.language == "de"
        assert info.email == "owner@example.de"
        assert (await env.client("key-en").check_key()).language == "en"

    async def test_check_key_language_field_when_present(self, env: Env) -> None:
        env.state.config.account_language = True
        env.state.accounts["key-en"].language = "fr"
        assert (await env.client("key-en").check_key()).language == "fr"

    async def test_bad_key_is_auth_error_with_hint_and_no_secret(self, env: Env) -> None:
        with pytest.raises(BrevoAuthError) as caught:
            await env.client("xkeysib-secret-value").check_key()
        assert "Authorized IPs" in caught.value.message
        assert "xkeysib-secret-value" not in str(caught.value)
        assert caught.value.status_code == 401


class TestListAndFields:
    async def test_ensure_list_creates_once_in_a_folder(self, env: Env) -> None:
        client = env.client()
        first = await client.ensure_list()
        second = await client.ensure_list()
        assert first.created and not second.created
        assert first.id == second.id
        account = env.state.accounts["key-de"]
        assert list(account.folders.values()) == ["onOffice"]

    async def test_ensure_list_pages_and_picks_lowest_duplicate(self, env: Env) -> None:
        account = env.state.accounts["key-de"]
        account.folders[1] = "x"
        for n in range(120):
            name = "onoffice" if n in (70, 90) else f"list{n}"
            account.lists[1000 + n] = {"name": name, "folderId": 1, "createdAt": "2024"}
        info = await env.client().ensure_list()
        assert info.id == "1070" and not info.created

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ("key-de", FieldMapping(first_name="VORNAME", last_name="NACHNAME",
                                    salutation="ANREDE", greeting="BRIEFANREDE")),
            ("key-en", FieldMapping(first_name="FIRSTNAME", last_name="LASTNAME",
                                    salutation="SALUTATION", greeting="GREETING")),
        ],
    )  # fmt: skip
    async def test_language_specific_attribute_names(
        self, env: Env, key: str, expected: FieldMapping
    ) -> None:
        client = env.client(key)
        _, mapping = await setup_list(client)
        assert mapping == expected
        assert set(env.state.accounts[key].attributes) >= {
            expected.salutation,
            expected.greeting,
        }
        # idempotent: nothing is created twice
        assert await client.ensure_fields("1") == expected

    async def test_custom_names_and_non_text_attribute(self, env: Env) -> None:
        account = env.state.accounts["key-en"]
        account.attributes = {
            "FNAME": {"name": "FNAME", "category": "normal", "type": "text"},
            "LNAME": {"name": "LNAME", "category": "normal", "type": "text"},
            "SALUTATION": {"name": "SALUTATION", "category": "category", "type": "category"},
        }
        mapping = await env.client("key-en").ensure_fields("1")
        assert mapping.first_name == "FNAME" and mapping.last_name == "LNAME"
        assert mapping.salutation is None  # never write text into a category attribute
        assert mapping.greeting == "GREETING"


class TestUpsert:
    async def test_bulk_import_with_rejections_and_blacklist(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        env.state.seed_contact(env.state.accounts["key-de"], "p1@example.de", list_ids=[77])
        opted_out = people(2, subscribed=False, prefix="out")
        contacts = [*people(5), ContactData(email="not-an-email"), *opted_out]
        results = await client.upsert_contacts(list_id, contacts, mapping)
        assert [r.email for r in results] == [c.email for c in contacts]
        outcomes = [r.outcome for r in results]
        assert outcomes.count(UpsertOutcome.synced) == 7
        assert results[5].outcome is UpsertOutcome.rejected
        assert results[5].code == RejectReason.invalid_email and results[5].detail
        stored = env.contact("p1@example.de")
        assert stored["attributes"] == {
            "VORNAME": "Vor1",
            "NACHNAME": "Nach1",
            "ANREDE": "Frau",
            "BRIEFANREDE": "Sehr geehrte Frau Nach1",
        }
        assert stored["listIds"] == sorted([77, int(list_id)])
        assert not stored["emailBlacklisted"]
        assert env.contact("out0@example.de")["emailBlacklisted"] is True
        assert env.state.request_counts["POST /contacts/import"] == 2

    async def test_import_chunks_by_size(self, env: Env) -> None:
        client = env.client(import_max_bytes=2_000)
        list_id, mapping = await setup_list(client)
        results = await client.upsert_contacts(list_id, people(60), mapping)
        assert all(r.outcome is UpsertOutcome.synced for r in results)
        assert env.state.request_counts["POST /contacts/import"] > 3
        assert len(env.state.accounts["key-de"].members[int(list_id)]) == 60

    async def test_import_waits_for_the_process(self, env: Env) -> None:
        env.state.config.import_delay = 0.2
        client = env.client()
        list_id, mapping = await setup_list(client)
        await client.upsert_contacts(list_id, people(10), mapping)
        polls = [n for k, n in env.state.request_counts.items() if k.startswith("GET /processes/")]
        assert polls and polls[0] >= 2

    async def test_small_batch_reports_created_and_updated(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        first = await client.upsert_contacts(list_id, people(2), mapping)
        again = await client.upsert_contacts(list_id, people(2), mapping)
        assert [r.outcome for r in first] == [UpsertOutcome.created] * 2
        assert first[0].provider_id is not None
        assert [r.outcome for r in again] == [UpsertOutcome.updated] * 2
        assert "POST /contacts/import" not in env.state.request_counts

    @pytest.mark.parametrize("replaces", [False, True])
    async def test_single_upsert_keeps_list_under_both_readings(
        self, env: Env, replaces: bool
    ) -> None:
        env.state.config.upsert_replaces_lists = replaces
        client = env.client()
        list_id, mapping = await setup_list(client)
        env.state.seed_contact(env.state.accounts["key-de"], "p0@example.de", list_ids=[5])
        result = await client.upsert_contact(list_id, people(1)[0], mapping)
        assert result.outcome is UpsertOutcome.updated
        assert int(list_id) in env.contact("p0@example.de")["listIds"]  # type: ignore[operator]

    async def test_unsubscribed_upsert_blacklists(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        await client.upsert_contact(list_id, people(1, subscribed=False)[0], mapping)
        contact = await client.get_contact(list_id, "p0@example.de")
        assert contact is not None and contact.subscribed is False
        assert contact.status == "blacklisted"


class TestContactOperations:
    async def test_subscription_round_trip(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        await client.upsert_contact(list_id, people(1)[0], mapping)
        await client.set_subscription(list_id, "p0@example.de", False)
        assert env.contact("p0@example.de")["emailBlacklisted"] is True
        await client.set_subscription(list_id, "p0@example.de", True)
        got = await client.get_contact(list_id, "p0@example.de")
        assert got is not None and got.subscribed and got.first_name == "Vor0"

    async def test_resubscribe_ignored_by_brevo_is_reported(self, env: Env) -> None:
        env.state.config.unblacklist_ignored = True
        client = env.client()
        list_id, _ = await setup_list(client)
        env.state.seed_contact(env.state.accounts["key-de"], "b@example.de", blacklisted=True)
        with pytest.raises(BrevoRequestError, match=r"kept b@example\.de blacklisted"):
            await client.set_subscription(list_id, "b@example.de", True)

    async def test_change_email_archive_and_missing(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        await client.upsert_contact(list_id, ContactData(email="a+b@example.de"), mapping)
        await client.change_email(list_id, "a+b@example.de", "new@example.de")
        assert await client.get_contact(list_id, "a+b@example.de") is None
        await client.archive_contact(list_id, "new@example.de")
        got = await client.get_contact(list_id, "new@example.de")
        assert got is not None and got.status == "not_in_list" and not got.subscribed
        await client.archive_contact(list_id, "new@example.de")  # idempotent
        await client.archive_contact(list_id, "ghost@example.de")
        await client.set_tags(list_id, "new@example.de", ["x"], [])  # Brevo has no tags

    async def test_change_email_to_taken_address_is_permanent(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        await client.upsert_contacts(list_id, people(2), mapping)
        with pytest.raises(BrevoRequestError) as caught:
            await client.change_email(list_id, "p0@example.de", "p1@example.de")
        assert caught.value.code == "duplicate_parameter"

    async def test_iter_and_count(self, env: Env) -> None:
        client = env.client()
        list_id, mapping = await setup_list(client)
        await client.upsert_contacts(list_id, people(1203), mapping)
        emails = [c.email async for c in client.iter_contacts(list_id)]
        assert len(emails) == len(set(emails)) == 1203
        assert emails[0] == "p0@example.de"  # oldest first
        assert await client.count_contacts(list_id) == 1203
        assert env.state.request_counts[f"GET /contacts/lists/{list_id}/contacts"] == 3


class TestWebhooks:
    async def test_register_is_idempotent_and_removable(self, env: Env) -> None:
        client = env.client()
        first = await client.register_webhook("1", "https://x.test/webhooks/brevo/t", "tok")
        again = await client.register_webhook("1", "https://x.test/webhooks/brevo/t", "tok")
        assert first == again
        hook = env.state.accounts["key-de"].webhooks[int(first.id)]
        assert hook["type"] == "marketing"
        assert hook["auth"] == {"type": "bearer", "token": "tok"}
        assert {"unsubscribed", "listAddition", "contactDeleted"} <= set(hook["events"])
        rotated = await client.register_webhook("1", "https://x.test/webhooks/brevo/t", "new")
        assert rotated.id != first.id
        assert len(env.state.accounts["key-de"].webhooks) == 1
        await client.remove_webhook("1", rotated.id)
        await client.remove_webhook("1", rotated.id)
        assert env.state.accounts["key-de"].webhooks == {}

    async def test_falls_back_when_contact_events_refused(self, env: Env) -> None:
        env.state.config.marketing_contact_events = False
        client = env.client()
        info = await client.register_webhook("1", "https://x.test/h", "tok")
        events = env.state.accounts["key-de"].webhooks[int(info.id)]["events"]
        assert "contactUpdated" not in events and "unsubscribed" in events


class TestErrorsAgainstEmulator:
    async def test_injected_5xx_is_retried(self, env: Env) -> None:
        env.state.faults.append(_fault("/account", 502, 2))
        assert (await env.client().check_key()).email
        assert env.state.request_counts["GET /account"] == 3

    async def test_retries_are_bounded(self, env: Env) -> None:
        env.state.faults.append(_fault("/account", 503, 10))
        with pytest.raises(ProviderTransientError):
            await env.client(max_retries=2).check_key()
        assert env.state.request_counts["GET /account"] == 3


def _fault(prefix: str, status: int, count: int):  # type: ignore[no-untyped-def]
    from emulators.brevo import Fault

    return Fault(method=None, path_prefix=prefix, status=status, remaining=count)


async def test_list_state_in_paced_parallel_pages(env: Env) -> None:
    env.state.config.contacts_rps = 10
    client = env.client(requests_per_second=9.0)
    list_id, _ = await setup_list(client)
    account = env.state.accounts["key-de"]
    for i in range(1200):
        contact = env.state.seed_contact(
            account, f"s{i}@example.de", list_ids=[int(list_id)], blacklisted=i % 7 == 0
        )
        if i % 11 == 0:
            contact.list_unsubscribed.add(int(list_id))
    before = dict(env.state.request_counts)
    seen = {}
    async for page in client.iter_list_state(list_id, concurrency=3):
        for item in page:
            seen[item.email] = item
    reads = {k: v - before.get(k, 0) for k, v in env.state.request_counts.items()}
    assert len(seen) == 1200
    assert sum(v for k, v in reads.items() if k.startswith("GET /contacts/lists/")) == 3
    assert env.state.rate_limited == 0
    first = seen["s0@example.de"]
    assert (first.status, first.blacklisted) == ("blacklisted", True)
    assert seen["s11@example.de"].status == "unsubscribed"
    assert seen["s1@example.de"].subscribed is True
    assert seen["s1@example.de"].last_changed is not None
