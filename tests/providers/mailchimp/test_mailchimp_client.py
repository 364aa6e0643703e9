"""MailchimpClient against the Mailchimp emulator: every operation of the provider interface."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emulators.mailchimp import DEFAULT_API_KEY, MailchimpState
from providers.base import (
    ContactData,
    FieldMapping,
    NewsletterProvider,
    ProviderAuthError,
    ProviderLimitError,
    ProviderRequestError,
    RejectReason,
    UpsertOutcome,
)
from providers.mailchimp import MailchimpClient, subscriber_hash

MAPPING = FieldMapping(
    first_name="FNAME", last_name="LNAME", salutation="SALUTATION", greeting="GREETING"
)


def contact(email: str, **kw: object) -> ContactData:
    return ContactData(email=email, first_name="Anna", last_name="Muster", **kw)


def audience(state: MailchimpState, name: str = "onoffice") -> str:
    lst = state.create_list(name)
    for tag, label in (("SALUTATION", "Anrede"), ("GREETING", "Briefanrede")):
        state._add_merge_field(lst, tag, label, "text")
    return lst.id


@pytest.fixture
def list_id(state: MailchimpState) -> str:
    return audience(state)


def test_client_implements_the_provider_protocol(client: MailchimpClient) -> None:
    assert isinstance(client, NewsletterProvider)
    assert client.max_batch_size == 500


class TestCheckKey:
    async def test_returns_account_info(self, client: MailchimpClient) -> None:
        account = await client.check_key()
        assert account.account_name == "Musterhaus Immobilien GmbH"
        assert account.email == "office@musterhaus-immobilien.de"
        assert account.language == "de"

    async def test_unknown_key_is_an_auth_error_with_advice(
        self, make_client: Callable[..., MailchimpClient]
    ) -> None:
        other = make_client(api_key="ffffffffffffffffffffffffffffffff-us1")
        with pytest.raises(ProviderAuthError) as caught:
            await other.check_key()
        assert "API Key Invalid" in caught.value.message
        assert "Profile > Extras > API keys" in caught.value.message
        assert "ffffffffffffffff" not in caught.value.message


class TestApiKeyValidation:
    @pytest.mark.parametrize(
        "key",
        [
            "abc-us1.evil.com",
            "abc-us1/..",
            "abc-",
            "abc",
            "abc-us1@evil.com",
            "abc-US1",
            "-us1",
            "abc-1us",
            "a/b-us1",
        ],
    )
    def test_rejects_keys_whose_dc_is_not_a_plain_datacentre(self, key: str) -> None:
        with pytest.raises(ProviderAuthError) as caught:
            MailchimpClient(api_key=key)
        assert "not a valid Mailchimp API key" in caught.value.message

    def test_builds_the_datacentre_host(self) -> None:
        mc = MailchimpClient(api_key=DEFAULT_API_KEY.replace("-us1", "-us21"))
        assert mc.base_url == "https://us21.api.mailchimp.com/3.0"


class TestEnsureList:
    async def test_finds_existing_list_across_pages(
        self, state: MailchimpState, make_client: Callable[..., MailchimpClient]
    ) -> None:
        for n in range(5):
            state.create_list(f"other {n}")
        wanted = state.create_list("onoffice")
        mc = make_client(page_size=2)
        info = await mc.ensure_list()
        assert (info.id, info.created) == (wanted.id, False)
        assert state.request_counts["GET /3.0/lists"] == 3

    async def test_creates_the_list_with_account_contact_data(
        self, client: MailchimpClient, state: MailchimpState
    ) -> None:
        info = await client.ensure_list()
        assert info.created
        created = state.lists[info.id]
        assert created.name == "onoffice"
        assert created.body["contact"]["city"] == "Berlin"
        assert created.body["campaign_defaults"]["from_email"] == "office@musterhaus-immobilien.de"
        assert (await client.ensure_list()).id == info.id  # idempotent

    async def test_free_plan_limit_tells_the_user_to_rename(
        self, client: MailchimpClient, state: MailchimpState
    ) -> None:
        state.max_lists = 1
        state.create_list("Newsletter")
        with pytest.raises(ProviderLimitError) as caught:
            await client.ensure_list()
        assert "Rename your existing audience to onoffice" in caught.value.message
        assert "'Newsletter'" in caught.value.message

    async def test_two_lists_with_the_name_are_a_configuration_error(
        self, client: MailchimpClient, state: MailchimpState
    ) -> None:
        state.create_list("onoffice")
        state.create_list("onoffice")
        with pytest.raises(ProviderRequestError, match="2 audiences named 'onoffice'"):
            await client.ensure_list()


class TestEnsureFields:
    async def test_creates_missing_salutation_and_greeting_once(
        self, client: MailchimpClient, state: MailchimpState
    ) -> None:
        lst = state.create_list("onoffice")
        await client.check_key()  # learns the account language (de)
        mapping = await client.ensure_fields(lst.id)
        assert mapping == MAPPING
        names = {f["tag"]: f["name"] for f in lst.merge_fields}
        assert names["SALUTATION"] == "Anrede"
        assert names["GREETING"] == "Briefanrede"
        count = len(lst.merge_fields)
        assert await client.ensure_fields(lst.id) == MAPPING
        assert len(lst.merge_fields) == count

    async def test_field_that_cannot_be_created_maps_to_none(
        self, client: MailchimpClient, state: MailchimpState
    ) -> None:
        lst = state.create_list("onoffice")
        for n in range(25):  # reach the audience's 30 merge field limit
            state._add_merge_field(lst, f"F{n}", f"Field {n}", "text")
        mapping = await client.ensure_fields(lst.id)
        assert (mapping.first_name, mapping.salutation, mapping.greeting) == ("FNAME", None, None)


class TestUpsertContacts:
    async def test_creates_updates_and_sets_tags(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.seed_member(list_id, "old@example.com", tags=["Kunde"])
        contacts = [
            contact("new@example.com", salutation="Frau", greeting="Liebe Anna", tags=["Käufer"]),
            contact("old@example.com", tags=["Kunde"]),
            contact("off@example.com", subscribed=False),
        ]
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        assert [r.outcome for r in results] == [
            UpsertOutcome.created,
            UpsertOutcome.updated,
            UpsertOutcome.created,
        ]
        assert results[0].provider_id == subscriber_hash("new@example.com")
        members = state.lists[list_id].members
        new = members[subscriber_hash("new@example.com")]
        assert new.merge_fields["SALUTATION"] == "Frau"
        assert list(new.tags) == ["Käufer"]
        assert members[subscriber_hash("off@example.com")].status == "unsubscribed"
        # the unchanged tag of old@ needed no extra request; only new@ was added to a tag
        assert state.request_counts["POST /3.0/lists/{list_id}/segments/{segment_id}"] == 1
        assert state.request_counts["POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"] == 0

    async def test_rejections_carry_actionable_reasons(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.seed_member(
            list_id, "self@example.com", status="unsubscribed", self_unsubscribed=True
        )
        state.forgotten_emails.add("gone@example.com")
        state.compliance_emails.add("review@example.com")
        contacts = [
            contact("self@example.com"),
            contact("gone@example.com"),
            contact("not-an-address@"),
            contact("review@example.com"),
            contact("fine@example.com"),
        ]
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        outcomes = [r.outcome for r in results]
        assert outcomes[:4] == [UpsertOutcome.rejected] * 4
        assert outcomes[4] == UpsertOutcome.created
        # Each refusal as a code (Mailchimp's table), Mailchimp's own words as the detail.
        assert [r.code for r in results[:4]] == [
            RejectReason.compliance,
            RejectReason.forgotten,
            RejectReason.invalid_email,
            RejectReason.compliance,
        ]
        assert "compliance state" in (results[0].detail or "")
        assert "permanently deleted" in (results[1].detail or "")
        assert "looks fake or invalid" in (results[2].detail or "")
        assert "compliance" in (results[3].detail or "")
        assert results[4].code is None and results[4].detail is None

    async def test_splits_into_batches_of_500_and_keeps_input_order(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        contacts = [contact(f"p{n}@example.com") for n in range(1203)]
        contacts.append(contact("P5@example.com"))  # a duplicate, differently cased
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        assert [r.email for r in results[:3]] == [
            "p0@example.com",
            "p1@example.com",
            "p2@example.com",
        ]
        assert len(results) == 1204
        assert results[5].outcome == results[-1].outcome == UpsertOutcome.created
        assert state.request_counts["POST /3.0/lists/{list_id}"] == 3
        assert len(state.lists[list_id].members) == 1203


class TestSingleContact:
    async def test_upsert_contact_put_and_tags(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        result = await client.upsert_contact(list_id, contact("a@example.com", tags=["X"]), MAPPING)
        assert result.outcome == UpsertOutcome.synced
        found = await client.get_contact(list_id, "A@example.com")
        assert found is not None
        assert (found.first_name, found.subscribed, found.tags) == ("Anna", True, ["X"])

    async def test_upsert_contact_keep_status_leaves_unsubscribed_alone(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.seed_member(list_id, "u@example.com", status="unsubscribed")
        await client.upsert_contact(list_id, contact("u@example.com"), MAPPING, keep_status=True)
        assert state.lists[list_id].members[subscriber_hash("u@example.com")].status == (
            "unsubscribed"
        )

    async def test_upsert_contact_forgotten_is_rejected_not_raised(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.forgotten_emails.add("gone@example.com")
        result = await client.upsert_contact(list_id, contact("gone@example.com"), MAPPING)
        assert result.outcome == UpsertOutcome.rejected
        assert result.code == RejectReason.forgotten
        assert "Forgotten Email Not Subscribed" in (result.detail or "")
        assert "permanently deleted" in (result.detail or "")

    async def test_a_permanent_delete_blocks_that_audience_only(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        other = audience(state, "other")
        await client.upsert_contact(list_id, contact("gone@example.com"), MAPPING)
        await client.delete_contact_permanently(list_id, "gone@example.com")
        again = await client.upsert_contact(list_id, contact("gone@example.com"), MAPPING)
        assert again.outcome == UpsertOutcome.rejected
        # Mailchimp: "permanently deleted from this audience": the account's others still take it.
        elsewhere = await client.upsert_contact(other, contact("gone@example.com"), MAPPING)
        assert elsewhere.outcome != UpsertOutcome.rejected, elsewhere.reason
        assert subscriber_hash("gone@example.com") in state.lists[other].members

    async def test_subscription_email_change_archive_and_tags(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        members = state.lists[list_id].members
        await client.set_subscription(list_id, "s@example.com", True)
        assert members[subscriber_hash("s@example.com")].status == "subscribed"
        await client.set_subscription(list_id, "s@example.com", False)
        assert members[subscriber_hash("s@example.com")].status == "unsubscribed"
        await client.set_subscription(list_id, "unknown@example.com", False)  # no-op
        assert subscriber_hash("unknown@example.com") not in members

        await client.set_tags(list_id, "s@example.com", add=["A", "B"], remove=[])
        await client.set_tags(list_id, "s@example.com", add=[], remove=["A"])
        assert list(members[subscriber_hash("s@example.com")].tags) == ["B"]

        await client.change_email(list_id, "s@example.com", "t@example.com")
        assert subscriber_hash("s@example.com") not in members
        assert members[subscriber_hash("t@example.com")].email == "t@example.com"

        await client.archive_contact(list_id, "t@example.com")
        await client.archive_contact(list_id, "t@example.com")  # idempotent
        found = await client.get_contact(list_id, "t@example.com")
        assert found is not None and found.status == "archived"
        assert await client.get_contact(list_id, "never@example.com") is None

    async def test_self_unsubscribed_cannot_be_resubscribed(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.seed_member(
            list_id, "self@example.com", status="unsubscribed", self_unsubscribed=True
        )
        with pytest.raises(ProviderRequestError, match="must sign up again themselves"):
            await client.set_subscription(list_id, "self@example.com", True)

    async def test_email_change_to_existing_address_fails_permanently(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.seed_member(list_id, "a@example.com")
        state.seed_member(list_id, "b@example.com", status="archived")
        with pytest.raises(ProviderRequestError, match="Member Exists"):
            await client.change_email(list_id, "a@example.com", "b@example.com")


class TestReading:
    async def test_iter_contacts_pages_with_tags_and_skips_archived(
        self, state: MailchimpState, make_client: Callable[..., MailchimpClient], list_id: str
    ) -> None:
        for n in range(25):
            state.seed_member(
                list_id, f"m{n}@example.com", tags=[f"t{n}"], merge_fields={"FNAME": f"N{n}"}
            )
        state.seed_member(list_id, "archived@example.com", status="archived")
        many = state.seed_member(list_id, "many@example.com", tags=[f"tag{i}" for i in range(60)])
        mc = make_client(page_size=10)
        contacts = [c async for c in mc.iter_contacts(list_id)]
        assert len(contacts) == 26
        assert contacts[3].first_name == "N3" and contacts[3].tags == ["t3"]
        assert contacts[-1].email == many.email and len(contacts[-1].tags) == 60
        assert state.request_counts["GET /3.0/lists/{list_id}/members"] == 3
        assert await mc.count_contacts(list_id) == 26


class TestWebhooks:
    async def test_register_reuses_the_url_and_never_enables_api_source(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        checked: list[str] = []

        async def url_checker(url: str) -> bool:
            checked.append(url)
            return True

        state.url_checker = url_checker
        url = "https://connector.example.com/webhooks/mailchimp/secret-token"
        first = await client.register_webhook(list_id, url, "ignored")
        second = await client.register_webhook(list_id, url, "ignored")
        assert first.id == second.id and checked == [url]
        hook = state.lists[list_id].webhooks[first.id]
        assert hook["sources"] == {"user": True, "admin": True, "api": False}
        assert all(hook["events"].values()) and len(hook["events"]) == 6

        hook["sources"]["api"] = True  # someone enabled it in the UI: we repair it
        await client.register_webhook(list_id, url, "ignored")
        assert hook["sources"]["api"] is False

        await client.remove_webhook(list_id, first.id)
        await client.remove_webhook(list_id, first.id)  # idempotent
        assert state.lists[list_id].webhooks == {}

    async def test_unreachable_url_is_explained(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        async def url_checker(url: str) -> bool:
            return False

        state.url_checker = url_checker
        with pytest.raises(ProviderRequestError, match="PUBLIC_BASE_URL"):
            await client.register_webhook(list_id, "https://nope.example.com/x", "t")

    async def test_url_check_reaches_an_in_process_asgi_app(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        import httpx
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def hook(request: object) -> PlainTextResponse:
            return PlainTextResponse("ok")

        target = Starlette(routes=[Route("/webhooks/mailchimp/{token}", hook)])

        async def via_asgi(url: str) -> bool:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=target)) as c:
                return (await c.get(url)).status_code == 200

        state.url_checker = via_asgi
        info = await client.register_webhook(list_id, "http://app.test/webhooks/mailchimp/t1", "")
        assert info.url.endswith("/t1")
        with pytest.raises(ProviderRequestError):
            await client.register_webhook(list_id, "http://app.test/elsewhere", "")
