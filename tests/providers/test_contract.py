"""One contract for every `NewsletterProvider`: the same tests, run against Mailchimp and Brevo.

Each test gets a `Harness`: the provider (typed as the protocol, talking to its in-process
emulator with fast retry settings) and a small provider-neutral `Inspector` over the
emulator's state, used only where a test must look at the provider side (stored fields, request
counts, fault injection, webhooks). Tests call protocol methods only.

Where the providers legitimately differ, the difference is a named, documented attribute of the
harness (e.g. `has_tags`), never an `if provider == ...` in a test.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
import pytest

from emulators import brevo as brevo_emulator
from emulators import mailchimp as mailchimp_emulator
from providers.base import (
    AccountInfo,
    ContactData,
    FieldMapping,
    NewsletterProvider,
    ProviderAuthError,
    ProviderContact,
    ProviderRequestError,
    ProviderTransientError,
    RejectReason,
    UpsertOutcome,
    UpsertResult,
)
from providers.brevo import BrevoClient
from providers.mailchimp import MailchimpClient

MAX_RETRIES = 2
MAILCHIMP_PAGE_SIZE = 7  # MailchimpClient takes a page size; Brevo's is fixed at 500
BREVO_PAGE_SIZE = 500
BREVO_KEY = "xkeysib-contract-de"
BREVO_SINGLE_UPSERT_THRESHOLD = 20  # BrevoClient's default: larger batches are imported
# Small enough that a few hundred contacts need several import requests (splitting is tested).
BREVO_IMPORT_MAX_BYTES = 20_000


# ---------------------------------------------------------------------------------------------
# Provider-neutral view of an emulator
# ---------------------------------------------------------------------------------------------


class Inspector(Protocol):
    def violations(self) -> list[str]:
        """Requests the emulator found not to conform to the provider's OpenAPI spec."""
        ...

    def requests(self) -> int:
        """API requests received so far (every attempt counts)."""
        ...

    def member_page_requests(self) -> int:
        """Requests for a page of list members (what `iter_contacts` pages through)."""
        ...

    def bulk_write_requests(self) -> int:
        """Bulk contact writes (Mailchimp batch subscribe, Brevo import)."""
        ...

    def fail_every_request(self, status: int, times: int) -> None: ...

    def field_names(self, list_id: str) -> set[str]:
        """Contact fields that exist for the list (merge field tags / attribute names)."""
        ...

    def stored_fields(self, list_id: str, email: str) -> dict[str, object]:
        """The field values the provider stores for the contact."""
        ...

    def stored_contacts(self) -> int:
        """Contacts the provider knows, in any state (archived ones included)."""
        ...

    def webhook_ids(self, list_id: str) -> set[str]: ...


class _SentRequests:
    """Counts every HTTP request the clients send, as seen on the wire (401s included, which
    the Mailchimp emulator does not count)."""

    def __init__(self) -> None:
        self.sent = 0

    async def hook(self, request: httpx.Request) -> None:
        self.sent += 1

    def requests(self) -> int:
        return self.sent


class MailchimpInspector(_SentRequests):
    def __init__(self, state: mailchimp_emulator.MailchimpState) -> None:
        super().__init__()
        self.state = state

    def violations(self) -> list[str]:
        return list(self.state.spec_violations)

    def member_page_requests(self) -> int:
        return self.state.request_counts["GET /3.0/lists/{list_id}/members"]

    def bulk_write_requests(self) -> int:
        return self.state.request_counts["POST /3.0/lists/{list_id}"]

    def fail_every_request(self, status: int, times: int) -> None:
        self.state.faults.append(mailchimp_emulator.Fault(status=status, count=times))

    def field_names(self, list_id: str) -> set[str]:
        return {str(item["tag"]) for item in self.state.lists[list_id].merge_fields}

    def stored_fields(self, list_id: str, email: str) -> dict[str, object]:
        members = self.state.lists[list_id].members
        return dict(members[mailchimp_emulator.subscriber_hash(email)].merge_fields)

    def stored_contacts(self) -> int:
        return sum(len(lst.members) for lst in self.state.lists.values())

    def webhook_ids(self, list_id: str) -> set[str]:
        return set(self.state.lists[list_id].webhooks)


class BrevoInspector(_SentRequests):
    _MEMBER_PAGE = re.compile(r"GET /contacts/lists/\d+/contacts")

    def __init__(self, state: brevo_emulator.BrevoState) -> None:
        super().__init__()
        self.state = state
        self.account = state.accounts[BREVO_KEY]

    def violations(self) -> list[str]:
        return list(self.state.violations)

    def member_page_requests(self) -> int:
        counts = self.state.request_counts
        return sum(n for key, n in counts.items() if self._MEMBER_PAGE.fullmatch(key))

    def bulk_write_requests(self) -> int:
        return self.state.request_counts.get("POST /contacts/import", 0)

    def fail_every_request(self, status: int, times: int) -> None:
        self.state.faults.append(
            brevo_emulator.Fault(method=None, path_prefix="/", status=status, remaining=times)
        )

    def field_names(self, list_id: str) -> set[str]:
        return set(self.account.attributes)  # Brevo attributes belong to the account

    def stored_fields(self, list_id: str, email: str) -> dict[str, object]:
        return dict(self.account.contacts[email].attributes)

    def stored_contacts(self) -> int:
        return len(self.account.contacts)

    def webhook_ids(self, list_id: str) -> set[str]:
        return {str(hook_id) for hook_id in self.account.webhooks}


# ---------------------------------------------------------------------------------------------
# The harness and its fixture
# ---------------------------------------------------------------------------------------------


@dataclass
class Harness:
    provider: NewsletterProvider
    inspector: Inspector
    key: str  # the key `provider` uses
    make: Callable[[str], NewsletterProvider]  # another client of the same emulator, given key
    wrong_key: str  # well-formed, but unknown to the emulator
    page_size: int  # contacts per `iter_contacts` page, as configured
    # Brevo imports batches above its single-upsert threshold asynchronously, and the import
    # does not say which contacts it created: those results are `synced`. Mailchimp's batch
    # subscribe always tells created from updated.
    bulk_reports_synced: Callable[[int], bool]
    # `upsert_contact` (one contact): Mailchimp's PUT does not say whether it created or updated
    # the member, so it answers `synced`; Brevo's POST /contacts answers 201 vs 204.
    single_upsert_tells_outcome: bool
    # Mailchimp has tags; Brevo contacts have none and `set_tags` is a documented no-op there.
    has_tags: bool
    # Differences the sync should know about, pinned so that a change is noticed:
    # - an upsert with subscribed=True re-subscribes a contact unsubscribed through the API on
    #   Mailchimp (batch subscribe sends the status), while Brevo never lifts a blacklist in an
    #   upsert (that needs `set_subscription`);
    upsert_resubscribes: bool
    # - an empty name in an upsert clears the field on Mailchimp; Brevo leaves empty values out
    #   so they never wipe data entered in Brevo.
    empty_values_clear_fields: bool


async def _accept_any_url(url: str) -> bool:
    return True  # Mailchimp GETs a webhook URL before accepting it; nothing listens here


@pytest.fixture(params=["mailchimp", "brevo"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with contextlib.AsyncExitStack() as stack:
        made: list[NewsletterProvider] = []
        if request.param == "mailchimp":
            # Without its spec file the emulator validates nothing and "no violations" is void.
            assert mailchimp_emulator.SPEC_PATH.exists(), mailchimp_emulator.SPEC_PATH
            mc_state = mailchimp_emulator.MailchimpState()
            mc_state.url_checker = _accept_any_url
            mc_inspector = MailchimpInspector(mc_state)
            app = mailchimp_emulator.create_app(mc_state)
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    event_hooks={"request": [mc_inspector.hook]},
                )
            )

            def make(key: str) -> NewsletterProvider:
                client = MailchimpClient(
                    api_key=key,
                    base_url_template="http://mailchimp.test/3.0",
                    http=http,
                    max_retries=MAX_RETRIES,
                    backoff_base_s=0.001,
                    max_backoff_s=0.005,
                    page_size=MAILCHIMP_PAGE_SIZE,
                )
                made.append(client)
                return client

            harness = Harness(
                provider=make(mailchimp_emulator.DEFAULT_API_KEY),
                key=mailchimp_emulator.DEFAULT_API_KEY,
                inspector=mc_inspector,
                make=make,
                wrong_key="ffffffffffffffffffffffffffffffff-us1",
                page_size=MAILCHIMP_PAGE_SIZE,
                bulk_reports_synced=lambda n: False,
                single_upsert_tells_outcome=False,
                has_tags=True,
                upsert_resubscribes=True,
                empty_values_clear_fields=True,
            )
        else:
            br_state = brevo_emulator.BrevoState(brevo_emulator.BrevoConfig(contacts_rps=0))
            br_state.add_account(BREVO_KEY, "de")
            br_inspector = BrevoInspector(br_state)
            app = brevo_emulator.create_app(br_state)
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    event_hooks={"request": [br_inspector.hook]},
                )
            )

            def make(key: str) -> NewsletterProvider:
                client = BrevoClient(
                    api_key=key,
                    base_url="http://brevo.test/v3",
                    http=http,
                    max_retries=MAX_RETRIES,
                    backoff_initial=0.001,
                    max_retry_wait=0.005,
                    requests_per_second=1000.0,
                    process_poll_interval=0.005,
                    single_upsert_threshold=BREVO_SINGLE_UPSERT_THRESHOLD,
                    import_max_bytes=BREVO_IMPORT_MAX_BYTES,
                )
                made.append(client)
                return client

            harness = Harness(
                provider=make(BREVO_KEY),
                key=BREVO_KEY,
                inspector=br_inspector,
                make=make,
                wrong_key="xkeysib-0000000000000000-wrong",
                page_size=BREVO_PAGE_SIZE,
                bulk_reports_synced=lambda n: n > BREVO_SINGLE_UPSERT_THRESHOLD,
                single_upsert_tells_outcome=True,
                has_tags=False,
                upsert_resubscribes=False,
                empty_values_clear_fields=False,
            )
        assert isinstance(harness.provider, NewsletterProvider)
        try:
            yield harness
        finally:
            for client in made:
                await client.aclose()


@pytest.fixture(autouse=True)
def _no_spec_violations(harness: Harness) -> Iterator[None]:
    """Every request of every test must conform to the provider's OpenAPI spec."""
    yield
    assert harness.inspector.violations() == []


@dataclass
class Ready:
    list_id: str
    mapping: FieldMapping


@pytest.fixture
async def ready(harness: Harness) -> Ready:
    """What the sync does before writing contacts: key check, list, fields."""
    await harness.provider.check_key()
    info = await harness.provider.ensure_list("onoffice")
    return Ready(info.id, await harness.provider.ensure_fields(info.id))


def people(n: int, prefix: str = "p", **kw: object) -> list[ContactData]:
    return [
        ContactData(
            email=f"{prefix}{i:04d}@example.de",
            first_name=f"Vor{i}",
            last_name=f"Nach{i}",
            salutation="Frau",
            greeting=f"Sehr geehrte Frau Nach{i}",
            **kw,
        )
        for i in range(n)
    ]


async def upsert_all(
    provider: NewsletterProvider, ready: Ready, contacts: Sequence[ContactData]
) -> list[UpsertResult]:
    """As the sync does: calls of at most `max_batch_size` contacts."""
    size = provider.max_batch_size
    results: list[UpsertResult] = []
    for start in range(0, len(contacts), size):
        chunk = contacts[start : start + size]
        answer = await provider.upsert_contacts(ready.list_id, chunk, ready.mapping)
        assert [r.email for r in answer] == [c.email for c in chunk]
        results += answer
    return results


async def all_contacts(harness: Harness, ready: Ready, start: int = 0) -> list[ProviderContact]:
    return [c async for c in harness.provider.iter_contacts(ready.list_id, start=start)]


# ---------------------------------------------------------------------------------------------
# Account, list, fields
# ---------------------------------------------------------------------------------------------


async def test_check_key_returns_the_account(harness: Harness) -> None:
    info = await harness.provider.check_key()
    assert isinstance(info, AccountInfo)
    assert info.account_id and info.account_name
    assert info.language == "de"  # both emulated accounts are German


async def test_wrong_key_is_an_auth_error_that_does_not_show_the_key(harness: Harness) -> None:
    wrong = harness.make(harness.wrong_key)
    before = harness.inspector.requests()
    with pytest.raises(ProviderAuthError) as caught:
        await wrong.check_key()
    assert harness.wrong_key not in caught.value.message
    assert harness.wrong_key not in str(caught.value)
    assert caught.value.status_code == 401
    assert harness.inspector.requests() - before == 1  # permanent: not retried


async def test_ensure_list_creates_once_and_then_finds_it(harness: Harness) -> None:
    await harness.provider.check_key()
    first = await harness.provider.ensure_list("onoffice")
    second = await harness.provider.ensure_list("onoffice")
    assert (first.created, second.created) == (True, False)
    assert first.id == second.id and second.name == "onoffice"
    # Found at the provider, not remembered by the client instance.
    other = harness.make(harness.key)
    third = await other.ensure_list("onoffice")
    assert (third.id, third.created) == (first.id, False)


async def test_ensure_fields_maps_names_and_greeting_to_existing_fields(
    harness: Harness,
) -> None:
    await harness.provider.check_key()
    list_id = (await harness.provider.ensure_list("onoffice")).id
    mapping = await harness.provider.ensure_fields(list_id)
    assert isinstance(mapping, FieldMapping)
    wanted = [mapping.first_name, mapping.last_name, mapping.greeting]
    assert all(wanted), mapping
    fields = harness.inspector.field_names(list_id)
    assert set(wanted) <= fields
    assert mapping.salutation is None or mapping.salutation in fields
    # Idempotent: the same mapping, no new fields.
    assert await harness.provider.ensure_fields(list_id) == mapping
    assert harness.inspector.field_names(list_id) == fields


# ---------------------------------------------------------------------------------------------
# Upserts and reads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 30])
async def test_upsert_contacts_one_result_per_input_in_order(
    harness: Harness, ready: Ready, n: int
) -> None:
    provider, inspector = harness.provider, harness.inspector
    valid = people(n)[::-1]  # not in any order the provider could reproduce by sorting
    invalid = ContactData(email="not-an-email", first_name="X")
    contacts = [*valid[: n // 2], invalid, *valid[n // 2 :]]
    before = inspector.stored_contacts()

    results = await provider.upsert_contacts(ready.list_id, contacts, ready.mapping)

    assert [r.email for r in results] == [c.email for c in contacts]
    rejected = results[n // 2]
    assert rejected.outcome == UpsertOutcome.rejected
    assert rejected.code == RejectReason.invalid_email and rejected.detail
    new_outcomes = {UpsertOutcome.created}
    if harness.bulk_reports_synced(n):
        new_outcomes.add(UpsertOutcome.synced)  # Brevo import: created/updated unknown
    assert {r.outcome for r in results if r is not rejected} <= new_outcomes
    assert inspector.stored_contacts() == before + n
    assert await provider.count_contacts(ready.list_id) == n

    # Names and greeting land in the mapped fields.
    sample = valid[1]
    stored = inspector.stored_fields(ready.list_id, sample.email)
    assert stored[str(ready.mapping.first_name)] == sample.first_name
    assert stored[str(ready.mapping.last_name)] == sample.last_name
    assert stored[str(ready.mapping.greeting)] == sample.greeting
    if ready.mapping.salutation:
        assert stored[ready.mapping.salutation] == sample.salutation

    # The same call again: nothing new is created.
    again = await provider.upsert_contacts(ready.list_id, contacts, ready.mapping)
    assert [r.email for r in again] == [c.email for c in contacts]
    assert again[n // 2].outcome == UpsertOutcome.rejected
    known_outcomes = {UpsertOutcome.updated, UpsertOutcome.unchanged}
    if harness.bulk_reports_synced(n):
        known_outcomes.add(UpsertOutcome.synced)
    outcomes = {r.outcome for i, r in enumerate(again) if i != n // 2}
    assert outcomes <= known_outcomes, outcomes
    assert inspector.stored_contacts() == before + n
    assert await provider.count_contacts(ready.list_id) == n


async def test_upsert_contacts_respects_max_batch_size_by_splitting(
    harness: Harness, ready: Ready
) -> None:
    provider = harness.provider
    assert provider.max_batch_size >= 1
    # More than Mailchimp takes per call and per batch request, and more than the Brevo import
    # size configured here: both the caller's and the provider's own splitting are exercised.
    contacts = people(501, prefix="split")
    results = await upsert_all(provider, ready, contacts)
    assert len(results) == len(contacts)
    assert all(r.outcome in (UpsertOutcome.created, UpsertOutcome.synced) for r in results)
    assert harness.inspector.bulk_write_requests() >= 2
    seen = [c.email for c in await all_contacts(harness, ready)]
    assert sorted(seen) == sorted(c.email for c in contacts)
    assert await provider.count_contacts(ready.list_id) == 501


async def test_upsert_contact_and_get_contact(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    contact = people(1, prefix="single")[0]
    first = await provider.upsert_contact(ready.list_id, contact, ready.mapping)
    renamed = contact.model_copy(update={"first_name": "Anna", "greeting": "Liebe Anna"})
    second = await provider.upsert_contact(ready.list_id, renamed, ready.mapping)
    assert (first.email, second.email) == (contact.email, contact.email)
    if harness.single_upsert_tells_outcome:
        assert (first.outcome, second.outcome) == (UpsertOutcome.created, UpsertOutcome.updated)
    else:
        assert (first.outcome, second.outcome) == (UpsertOutcome.synced, UpsertOutcome.synced)

    found = await provider.get_contact(ready.list_id, contact.email)
    assert found is not None
    assert (found.email, found.first_name, found.last_name) == (
        contact.email,
        "Anna",
        contact.last_name,
    )
    assert found.subscribed is True
    stored = harness.inspector.stored_fields(ready.list_id, contact.email)
    assert stored[str(ready.mapping.greeting)] == "Liebe Anna"
    assert harness.inspector.stored_contacts() == 1
    assert await provider.get_contact(ready.list_id, "nobody@example.de") is None


async def test_upsert_of_an_opted_out_contact_creates_it_unsubscribed(
    harness: Harness, ready: Ready
) -> None:
    out = people(2, prefix="out", subscribed=False)
    results = await harness.provider.upsert_contacts(ready.list_id, out, ready.mapping)
    assert [r.outcome for r in results] == [UpsertOutcome.created] * 2
    for contact in out:
        found = await harness.provider.get_contact(ready.list_id, contact.email)
        assert found is not None and found.subscribed is False


async def test_set_subscription_round_trip(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    contact = people(1, prefix="sub")[0]
    await provider.upsert_contacts(ready.list_id, [contact], ready.mapping)

    await provider.set_subscription(ready.list_id, contact.email, False)
    found = await provider.get_contact(ready.list_id, contact.email)
    assert found is not None and found.subscribed is False and found.status
    # An unsubscribed contact is still a contact of the list.
    listed = await all_contacts(harness, ready)
    assert [(c.email, c.subscribed) for c in listed] == [(contact.email, False)]
    assert await provider.count_contacts(ready.list_id) == 1

    await provider.set_subscription(ready.list_id, contact.email, True)
    found = await provider.get_contact(ready.list_id, contact.email)
    assert found is not None and found.subscribed is True
    assert found.first_name == contact.first_name

    # Unsubscribing an address the provider does not know is a no-op.
    await provider.set_subscription(ready.list_id, "stranger@example.de", False)
    assert await provider.get_contact(ready.list_id, "stranger@example.de") is None
    assert harness.inspector.stored_contacts() == 1


async def test_upsert_after_an_unsubscribe(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    small, bulk = people(1, prefix="re")[0], people(25, prefix="rebulk")
    await provider.upsert_contacts(ready.list_id, [small], ready.mapping)
    await provider.upsert_contacts(ready.list_id, bulk, ready.mapping)
    for email in (small.email, bulk[0].email):
        await provider.set_subscription(ready.list_id, email, False)

    await provider.upsert_contacts(ready.list_id, [small], ready.mapping)
    await provider.upsert_contacts(ready.list_id, bulk, ready.mapping)

    for email in (small.email, bulk[0].email):
        found = await provider.get_contact(ready.list_id, email)
        assert found is not None and found.subscribed is harness.upsert_resubscribes


async def test_upsert_with_an_empty_name(harness: Harness, ready: Ready) -> None:
    contact = people(1, prefix="empty")[0]
    await harness.provider.upsert_contacts(ready.list_id, [contact], ready.mapping)
    blank = contact.model_copy(update={"first_name": ""})
    await harness.provider.upsert_contacts(ready.list_id, [blank], ready.mapping)
    found = await harness.provider.get_contact(ready.list_id, contact.email)
    assert found is not None and found.last_name == contact.last_name
    assert found.first_name == ("" if harness.empty_values_clear_fields else contact.first_name)


async def test_change_email_moves_the_contact(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    old = people(1, prefix="old")[0]
    new_email = "new0000@example.de"
    await provider.upsert_contacts(ready.list_id, [old], ready.mapping)

    await provider.change_email(ready.list_id, old.email, new_email)

    moved = await provider.get_contact(ready.list_id, new_email)
    assert moved is not None
    assert (moved.email, moved.first_name, moved.subscribed) == (
        new_email,
        old.first_name,
        True,
    )
    assert await provider.get_contact(ready.list_id, old.email) is None
    assert [c.email for c in await all_contacts(harness, ready)] == [new_email]
    assert harness.inspector.stored_contacts() == 1


async def test_change_email_onto_an_existing_contact_is_refused_without_retry(
    harness: Harness, ready: Ready
) -> None:
    a, b = people(2, prefix="dup")
    await harness.provider.upsert_contacts(ready.list_id, [a, b], ready.mapping)
    before = harness.inspector.requests()
    with pytest.raises(ProviderRequestError) as caught:
        await harness.provider.change_email(ready.list_id, a.email, b.email)
    assert not isinstance(caught.value, ProviderTransientError)
    assert caught.value.status_code == 400
    assert harness.inspector.requests() - before == 1
    assert await harness.provider.get_contact(ready.list_id, a.email) is not None


async def test_archive_contact(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    contacts = people(3, prefix="arch")
    await provider.upsert_contacts(ready.list_id, contacts, ready.mapping)
    gone = contacts[1]

    await provider.archive_contact(ready.list_id, gone.email)

    remaining = [c.email for c in await all_contacts(harness, ready)]
    assert sorted(remaining) == sorted([contacts[0].email, contacts[2].email])
    assert await provider.count_contacts(ready.list_id) == 2
    # Archived is not subscribed, however the provider keeps it.
    found = await provider.get_contact(ready.list_id, gone.email)
    assert found is None or found.subscribed is False
    # Idempotent, also for an address the provider never knew.
    await provider.archive_contact(ready.list_id, gone.email)
    await provider.archive_contact(ready.list_id, "never@example.de")
    assert await provider.count_contacts(ready.list_id) == 2

    # A later upsert brings the contact back (onOffice sends it again).
    await provider.upsert_contacts(ready.list_id, [gone], ready.mapping)
    assert await provider.count_contacts(ready.list_id) == 3
    back = await provider.get_contact(ready.list_id, gone.email)
    assert back is not None and back.subscribed is True


async def test_iter_contacts_pages_and_offsets(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    n = 2 * harness.page_size + 3  # three pages, the last one partial
    contacts = people(n, prefix="page")
    await upsert_all(provider, ready, contacts)
    pages_before = harness.inspector.member_page_requests()

    listed = await all_contacts(harness, ready)

    emails = [c.email for c in listed]
    assert len(emails) == len(set(emails)) == n
    assert set(emails) == {c.email for c in contacts}
    assert harness.inspector.member_page_requests() - pages_before >= 3
    assert await provider.count_contacts(ready.list_id) == n
    by_email = {c.email: c for c in contacts}
    assert all(c.first_name == by_email[c.email].first_name for c in listed)
    assert all(c.subscribed is True for c in listed)

    k = harness.page_size + 2  # crosses a page boundary
    assert [c.email for c in await all_contacts(harness, ready, start=k)] == emails[k:]
    assert await all_contacts(harness, ready, start=n) == []


async def test_set_tags(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    tagged = people(1, prefix="tag", tags=["Käufer"])[0]
    await provider.upsert_contacts(ready.list_id, [tagged], ready.mapping)

    await provider.set_tags(ready.list_id, tagged.email, add=["Newsletter", "VIP"], remove=[])
    await provider.set_tags(ready.list_id, tagged.email, add=[], remove=["VIP"])
    await provider.set_tags(ready.list_id, tagged.email, add=[], remove=[])

    (listed,) = await all_contacts(harness, ready)
    found = await provider.get_contact(ready.list_id, tagged.email)
    assert found is not None
    if harness.has_tags:
        assert sorted(listed.tags) == ["Käufer", "Newsletter"]
    else:
        # Brevo has no contact tags: set_tags is a no-op that neither fails nor writes.
        assert listed.tags == []
    assert sorted(found.tags) == sorted(listed.tags)
    assert listed.first_name == tagged.first_name and listed.subscribed is True


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


async def test_register_webhook_is_idempotent_and_removable(harness: Harness, ready: Ready) -> None:
    provider = harness.provider
    url = "https://connector.example.com/webhooks/contract/secret-1"
    first = await provider.register_webhook(ready.list_id, url, "token-1")
    second = await provider.register_webhook(ready.list_id, url, "token-1")
    assert first.id == second.id and first.url == url
    assert harness.inspector.webhook_ids(ready.list_id) == {first.id}

    # A new token for the same URL still leaves exactly one webhook.
    third = await provider.register_webhook(ready.list_id, url, "token-2")
    assert harness.inspector.webhook_ids(ready.list_id) == {third.id}

    await provider.remove_webhook(ready.list_id, third.id)
    assert harness.inspector.webhook_ids(ready.list_id) == set()
    await provider.remove_webhook(ready.list_id, third.id)  # idempotent


async def test_webhooks_are_listed_and_updated_in_place(harness: Harness, ready: Ready) -> None:
    """What the health check reads and repairs: the optional events follow the activities."""
    provider = harness.provider
    url = "https://connector.example.com/webhooks/contract/secret-2"
    info = await provider.register_webhook(ready.list_id, url, "token-1", activities={})
    wanted = provider.webhook_setup(url, "token-1", {})
    (hook,) = [h for h in await provider.list_webhooks(ready.list_id) if h.url == url]
    assert hook.id == info.id
    assert hook.events >= wanted.events and not hook.events & wanted.off
    assert all(hook.sources.get(k, False) == v for k, v in wanted.sources.items())
    assert hook.token in (None, "token-1")

    more = provider.webhook_setup(url, "token-1", {"delivered": True})
    assert more.events - wanted.events  # an optional event switched on
    await provider.update_webhook(ready.list_id, hook.id, more)
    (after,) = [h for h in await provider.list_webhooks(ready.list_id) if h.url == url]
    assert after.id == hook.id and after.events >= more.events
    # Saving with other activities updates the same webhook (the one place to choose them).
    again = await provider.register_webhook(ready.list_id, url, "token-1", activities={})
    (last,) = [h for h in await provider.list_webhooks(ready.list_id) if h.url == url]
    assert again.id == hook.id and not last.events & wanted.off


# ---------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------


async def test_persistent_503_is_transient_after_bounded_retries(
    harness: Harness, ready: Ready
) -> None:
    contact = people(1, prefix="down")[0]
    await harness.provider.upsert_contacts(ready.list_id, [contact], ready.mapping)
    harness.inspector.fail_every_request(503, times=1000)
    before = harness.inspector.requests()
    with pytest.raises(ProviderTransientError) as caught:
        await harness.provider.get_contact(ready.list_id, contact.email)
    assert caught.value.status_code == 503
    assert harness.inspector.requests() - before == MAX_RETRIES + 1


async def test_a_400_refusal_is_a_request_error_and_not_retried(
    harness: Harness, ready: Ready
) -> None:
    contact = people(1, prefix="bad")[0]
    await harness.provider.upsert_contacts(ready.list_id, [contact], ready.mapping)
    harness.inspector.fail_every_request(400, times=1000)
    before = harness.inspector.requests()
    with pytest.raises(ProviderRequestError) as caught:
        await harness.provider.get_contact(ready.list_id, contact.email)
    assert not isinstance(caught.value, ProviderTransientError)
    assert caught.value.status_code == 400
    assert harness.inspector.requests() - before == 1
