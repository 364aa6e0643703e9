"""upsert_contacts adds missing tags in bulk through static segments (against the emulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from emulators.mailchimp import Fault, MailchimpState
from providers.base import ContactData, FieldMapping, RejectReason, UpsertOutcome
from providers.mailchimp import MailchimpClient, subscriber_hash

MAPPING = FieldMapping(first_name="FNAME", last_name="LNAME")
TAGS = ("Kunde", "Interessent", "Eigentümer", "Mieter", "VIP")

BATCH = "POST /3.0/lists/{list_id}"
LIST_SEGMENTS = "GET /3.0/lists/{list_id}/segments"
CREATE_SEGMENT = "POST /3.0/lists/{list_id}/segments"
ADD_TO_SEGMENT = "POST /3.0/lists/{list_id}/segments/{segment_id}"
MEMBER_TAGS = "POST /3.0/lists/{list_id}/members/{subscriber_hash}/tags"


def tagged(email: str, *tags: str) -> ContactData:
    return ContactData(email=email, first_name="Anna", tags=list(tags))


def tags_of(state: MailchimpState, list_id: str, email: str) -> set[str]:
    return set(state.lists[list_id].members[subscriber_hash(email)].tags)


def tag_requests(state: MailchimpState) -> int:
    return sum(state.request_counts[key] for key in (ADD_TO_SEGMENT, MEMBER_TAGS))


@pytest.fixture
def list_id(state: MailchimpState) -> str:
    lst = state.create_list("onoffice")
    state._tag_id(lst, "Kunde")  # one tag exists already, the others get created
    return lst.id


class TestBulkTags:
    async def test_500_members_cost_one_request_per_distinct_tag(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        contacts = [
            tagged(f"p{n}@example.com", *{TAGS[n % 5], TAGS[(n * 7 + 1) % 5]})
            if n % 3
            else tagged(f"p{n}@example.com")
            for n in range(500)
        ]
        results = await client.upsert_contacts(list_id, contacts, MAPPING)

        assert {r.outcome for r in results} == {UpsertOutcome.created}
        for item in contacts:
            assert tags_of(state, list_id, item.email) == set(item.tags)
        assert state.request_counts[BATCH] == 1
        assert state.request_counts[LIST_SEGMENTS] == 1
        assert state.request_counts[CREATE_SEGMENT] == 4  # "Kunde" existed
        assert state.request_counts[ADD_TO_SEGMENT] == 5
        assert state.request_counts[MEMBER_TAGS] == 0
        assert state.spec_violations == []

        state.request_counts.clear()
        again = await client.upsert_contacts(list_id, contacts, MAPPING)
        assert {r.outcome for r in again} == {UpsertOutcome.updated}
        assert dict(state.request_counts) == {BATCH: 1}

    async def test_only_missing_tags_are_added_and_none_removed(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.seed_member(list_id, "a@example.com", tags=["Kunde", "Alt"])
        await client.upsert_contacts(list_id, [tagged("a@example.com", "Kunde", "VIP")], MAPPING)
        assert tags_of(state, list_id, "a@example.com") == {"Kunde", "Alt", "VIP"}
        assert state.request_counts[ADD_TO_SEGMENT] == 1

    async def test_segment_ids_are_looked_up_once_per_client_and_list(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        contacts = [tagged(f"p{n}@example.com", "Kunde") for n in range(600)]
        await client.upsert_contacts(list_id, contacts, MAPPING)
        await client.upsert_contacts(list_id, [tagged("late@example.com", "Kunde")], MAPPING)
        assert state.request_counts[LIST_SEGMENTS] == 1
        assert state.request_counts[ADD_TO_SEGMENT] == 3  # batches of 500 + 100, then 1
        assert tags_of(state, list_id, "late@example.com") == {"Kunde"}

    async def test_paged_lookup_finds_a_tag_on_a_later_page(
        self, make_client: Callable[..., MailchimpClient], state: MailchimpState, list_id: str
    ) -> None:
        lst = state.lists[list_id]
        for n in range(4):
            state._tag_id(lst, f"other {n}")
        state._tag_id(lst, "VIP")
        await make_client(page_size=2).upsert_contacts(
            list_id, [tagged("a@example.com", "VIP")], MAPPING
        )
        assert state.request_counts[LIST_SEGMENTS] == 3
        assert state.request_counts[CREATE_SEGMENT] == 0
        assert tags_of(state, list_id, "a@example.com") == {"VIP"}


class TestRefusalsAndFallback:
    async def test_address_in_segment_errors_is_tagged_through_the_member_endpoint(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.segment_rejected_emails.add("odd@example.com")
        contacts = [tagged("odd@example.com", "Kunde", "VIP"), tagged("ok@example.com", "Kunde")]
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        assert [r.outcome for r in results] == [UpsertOutcome.created] * 2
        assert tags_of(state, list_id, "odd@example.com") == {"Kunde", "VIP"}
        assert tags_of(state, list_id, "ok@example.com") == {"Kunde"}
        assert state.request_counts[MEMBER_TAGS] == 1  # one request for both of its tags

    async def test_refused_by_both_endpoints_is_rejected_with_a_reason(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.segment_rejected_emails.add("odd@example.com")
        state.faults.append(
            Fault(status=400, method="POST", path_contains=subscriber_hash("odd@example.com"))
        )
        contacts = [tagged("odd@example.com", "Kunde"), tagged("ok@example.com", "Kunde")]
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        odd, ok = results
        assert odd.outcome == UpsertOutcome.rejected
        assert odd.provider_id == subscriber_hash("odd@example.com")
        assert odd.code == RejectReason.tags
        assert "Invalid Resource" in (odd.detail or "")
        assert ok.outcome == UpsertOutcome.created
        assert tags_of(state, list_id, "odd@example.com") == set()

    async def test_failing_segment_call_falls_back_per_member_for_that_tag(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        kunde = state.lists[list_id].tag_ids["Kunde"]
        state.faults.append(Fault(status=400, method="POST", path_contains=f"/segments/{kunde}"))
        contacts = [tagged(f"p{n}@example.com", "Kunde", "VIP") for n in range(3)]
        contacts.append(tagged("v@example.com", "VIP"))
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        assert {r.outcome for r in results} == {UpsertOutcome.created}
        for item in contacts:
            assert tags_of(state, list_id, item.email) == set(item.tags)
        assert state.request_counts[ADD_TO_SEGMENT] == 2
        assert state.request_counts[MEMBER_TAGS] == 3  # only the members lacking "Kunde"

    async def test_tag_that_cannot_be_created_falls_back_per_member(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        state.faults.append(Fault(status=400, method="POST", path_contains="/segments"))
        contacts = [tagged("a@example.com", "Neu"), tagged("b@example.com", "Neu", "Kunde")]
        results = await client.upsert_contacts(list_id, contacts, MAPPING)
        assert {r.outcome for r in results} == {UpsertOutcome.created}
        assert tags_of(state, list_id, "b@example.com") == {"Neu", "Kunde"}
        assert state.request_counts[MEMBER_TAGS] == 2

    async def test_segment_deleted_in_mailchimp_is_looked_up_again(
        self, client: MailchimpClient, state: MailchimpState, list_id: str
    ) -> None:
        lst = state.lists[list_id]
        await client.upsert_contacts(list_id, [tagged("a@example.com", "Kunde")], MAPPING)
        del lst.tag_ids["Kunde"]  # the tag is deleted in Mailchimp
        lst.members[subscriber_hash("a@example.com")].tags.clear()
        await client.upsert_contacts(list_id, [tagged("b@example.com", "Kunde")], MAPPING)
        assert tags_of(state, list_id, "b@example.com") == {"Kunde"}  # via the member endpoint
        await client.upsert_contacts(list_id, [tagged("c@example.com", "Kunde")], MAPPING)
        assert tags_of(state, list_id, "c@example.com") == {"Kunde"}
        assert state.request_counts[LIST_SEGMENTS] == 2
        assert state.request_counts[MEMBER_TAGS] == 1
        assert state.request_counts[ADD_TO_SEGMENT] == 3  # a, b (404), c


class TestConcurrentWorkers:
    async def test_two_clients_creating_the_same_new_tags_need_no_fallback(
        self, make_client: Callable[..., MailchimpClient], state: MailchimpState, list_id: str
    ) -> None:
        """Two batch jobs (two client instances) start at once and both find "Mieter" and
        "VIP" missing; one creation wins, the other re-reads the tags instead of tagging
        every member one by one."""
        first, second = make_client(), make_client()
        batch_a = [tagged(f"a{n}@example.com", "Mieter", "VIP") for n in range(50)]
        batch_b = [tagged(f"b{n}@example.com", "Mieter", "VIP") for n in range(50)]
        await asyncio.gather(
            first.upsert_contacts(list_id, batch_a, MAPPING),
            second.upsert_contacts(list_id, batch_b, MAPPING),
        )
        assert state.request_counts[MEMBER_TAGS] == 0
        for item in [*batch_a, *batch_b]:
            assert tags_of(state, list_id, item.email) == {"Mieter", "VIP"}


async def test_deferred_tags_are_reported_then_added_500_per_request_across_batches(
    client: MailchimpClient, state: MailchimpState, list_id: str
) -> None:
    """The full sync's way: batches without tag requests, then one segment request per tag and
    500 members whatever the number of batches."""
    missing: dict[str, list[str]] = {}
    for batch in range(3):  # three batches of 400, every member tagged "Kunde"
        contacts = [tagged(f"d{batch}-{n}@example.com", "Kunde") for n in range(400)]
        results = await client.upsert_contacts(list_id, contacts, MAPPING, defer_tags=True)
        assert all(r.missing_tags == ["Kunde"] for r in results)
        missing |= {r.email: r.missing_tags for r in results}
    assert tag_requests(state) == 0
    assert tags_of(state, list_id, "d0-0@example.com") == set()

    assert await client.add_tags(list_id, missing) == {}
    assert state.request_counts[ADD_TO_SEGMENT] == 3  # ceil(1200 / 500), not one per batch
    assert state.request_counts[MEMBER_TAGS] == 0
    assert all(tags_of(state, list_id, email) == {"Kunde"} for email in missing)
    assert await client.add_tags(list_id, missing) == {}  # idempotent
    assert all(tags_of(state, list_id, email) == {"Kunde"} for email in missing)
