"""The full sync and the incremental push execute the person plan (issue #17, story 1; review
findings N8 and D9), in-process: PostgreSQL and the in-process Mailchimp emulator.

These cover the moment the end-to-end tests cannot hold still: address 2 still says its
unchanged "Yes" (the write-back of the opt-out has not reached it yet) when the next full sync
or an edit of address 2 comes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.contacts.values import Language
from app.db.base import utcnow
from app.db.models import Contact, InboundEvent, Problem, ProviderMember, SyncBatch, SyncRun
from app.db.session import unit_of_work
from app.incremental.push import push_addresses
from app.resources import Resources
from app.syncs.classify import process_page
from app.syncs.read import write_back_deferred
from emulators.mailchimp import MailchimpState, subscriber_hash
from onoffice_client.models import Address, NewsletterStatus
from providers.mailchimp import MailchimpClient
from tests.rows import add_connection, mailchimp_client

ANNA = "anna@example.de"


@pytest.fixture
def mailchimp() -> MailchimpState:
    return MailchimpState()


@pytest.fixture
async def provider(mailchimp: MailchimpState) -> AsyncIterator[MailchimpClient]:
    async with mailchimp_client(mailchimp) as client:
        yield client


def anna(i: int, newsletter: NewsletterStatus = NewsletterStatus.yes) -> Address:
    return Address(id=i, email=ANNA, first_name="Anna", last_name=f"L{i}", newsletter=newsletter)


async def connected(resources: Resources, provider: MailchimpClient, web_id: str) -> object:
    found = await provider.ensure_list("onoffice")
    mapping = await provider.ensure_fields(found.id)
    async with resources.transaction() as session:
        return await add_connection(
            session, web_id=web_id, list_id=found.id, field_mapping=mapping.model_dump()
        )


async def person_events(resources: Resources) -> list[dict[str, object]]:
    async with resources.sessionmaker() as session:
        rows = (await session.scalars(select(InboundEvent))).all()
    return [r.payload for r in rows if r.payload.get("raw_type") == "person"]


async def test_a_no_on_the_duplicate_address_is_not_ignored(
    resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState
) -> None:
    connection = await connected(resources, provider, "D9")
    await push_addresses(resources, provider, connection, [anna(1)])  # type: ignore[arg-type]
    member = mailchimp.lists[connection.list_id].members[subscriber_hash(ANNA)]  # type: ignore[attr-defined]
    assert member.status == "subscribed"
    # The agent opens Anna's second address (same email) and sets No.
    stats = await push_addresses(
        resources,
        provider,
        connection,  # type: ignore[arg-type]
        [anna(2, NewsletterStatus.no)],
    )
    assert stats.unsubscribed == 1 and member.status == "unsubscribed"
    (event,) = await person_events(resources)
    assert event["address_id"] == 2 and event["type"] == "unsubscribe"


async def _opted_out_two_days_ago(
    resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState, web_id: str
) -> tuple[object, object]:
    """Anna (addresses 1 and 2, both Yes) was synced; then the agent set No on address 1 and
    the push unsubscribed her; two days pass."""
    connection = await connected(resources, provider, web_id)
    await push_addresses(resources, provider, connection, [anna(1), anna(2)])  # type: ignore[arg-type]
    await push_addresses(resources, provider, connection, [anna(1, NewsletterStatus.no)])  # type: ignore[arg-type]
    member = mailchimp.lists[connection.list_id].members[subscriber_hash(ANNA)]  # type: ignore[attr-defined]
    assert member.status == "unsubscribed"
    two_days_ago = utcnow() - timedelta(days=2)
    async with resources.transaction() as session:
        (row,) = (await session.scalars(select(Contact))).all()
        row.provider_changed_at = row.onoffice_changed_at = two_days_ago
        # Every time the connector remembers of the addresses is two days old too.
        row.onoffice_addresses = {
            key: {k: two_days_ago.isoformat() if k in ("at", "f", "xt", "ot") and v else v
                  for k, v in seen.items()}
            for key, seen in (row.onoffice_addresses or {}).items()
        }  # fmt: skip
        assert row.onoffice_addresses["1"]["v"] == "no" and row.onoffice_addresses["1"]["at"]
    return connection, member


@pytest.mark.parametrize("others_read", [True, False])
async def test_an_unchanged_yes_on_the_duplicate_is_no_fresh_consent_for_the_full_sync(
    resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState, others_read: bool
) -> None:
    connection, member = await _opted_out_two_days_ago(resources, provider, mailchimp, "N8")
    # The next full sync: only address 2 is newsletter Yes; the list shows the unsubscribe.
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        run = SyncRun(connection_id=connection.id, status="running", provider_read_done=True)  # type: ignore[attr-defined]
        session.add(run)
        await session.flush()
        session.add(
            ProviderMember(
                connection_id=connection.id,  # type: ignore[attr-defined]
                run_id=run.id,
                email=ANNA,
                status="unsubscribed",
                changed_at=utcnow() - timedelta(days=2),
                tags=[],
            )
        )
        run_id = run.id
    others = {ANNA: [anna(1, NewsletterStatus.no), anna(2)]} if others_read else None
    before = len(await person_events(resources))
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        await process_page(
            session,
            run_id,
            connection,  # type: ignore[arg-type]
            [anna(2)],
            Language.de,
            list_state_known=True,
            others=others,
        )
    async with resources.sessionmaker() as session:
        assert (await session.scalars(select(SyncBatch))).all() == []  # nothing sent
        problems = {p.address_id: p for p in (await session.scalars(select(Problem))).all()}
    assert (problems[2].kind, problems[2].reason_code) == ("opted_out", "opted_out_onoffice")
    assert problems[2].reason_params == {"address": 1}
    # Address 1 (not newsletter Yes) is not read: it gets no row of its own.
    assert sorted(problems) == [2]
    assert member.status == "unsubscribed"  # type: ignore[attr-defined]
    # Address 2 gets No, with an activity naming address 1 (through the webhook applier).
    (event,) = (await person_events(resources))[before:]
    assert event["address_id"] == 1 and event["email"] == ANNA


async def test_an_edit_of_the_duplicate_does_not_resubscribe(
    resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState
) -> None:
    connection, member = await _opted_out_two_days_ago(resources, provider, mailchimp, "N9")
    # The agent edits address 2's name: the poll pushes it, Yes all along.
    stats = await push_addresses(resources, provider, connection, [anna(2)])  # type: ignore[arg-type]
    assert stats.upserted == 0 and member.status == "unsubscribed"  # type: ignore[attr-defined]


async def test_a_newer_yes_on_the_duplicate_is_a_fresh_consent(
    resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState
) -> None:
    connection, member = await _opted_out_two_days_ago(resources, provider, mailchimp, "N10")
    async with resources.transaction() as session:  # the applier wrote No onto address 2
        for event in (await session.scalars(select(InboundEvent))).all():
            event.status = "applied"
    # Address 2 was written to No; then the agent records a new consent on it.
    await push_addresses(resources, provider, connection, [anna(2, NewsletterStatus.no)])  # type: ignore[arg-type]
    stats = await push_addresses(resources, provider, connection, [anna(2)])  # type: ignore[arg-type]
    assert stats.upserted == 1 and member.status == "subscribed"  # type: ignore[attr-defined]


async def test_the_paged_read_writes_the_person_s_no_only_after_reading(
    resources: Resources, provider: MailchimpClient
) -> None:
    # A first sync: Anna's address 2 says Yes, address 1 says No. Setting address 2 to No
    # while the run still pages `Newsletter = Yes` by offset would shift the pages still to
    # read (a still-Yes address on no page): the write-back waits for the end of the reading.
    connection = await connected(resources, provider, "DEFER")
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        run = SyncRun(connection_id=connection.id, status="running", provider_read_done=True)  # type: ignore[attr-defined]
        session.add(run)
        await session.flush()
        run_id = run.id
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        await process_page(
            session,
            run_id,
            connection,  # type: ignore[arg-type]
            [anna(2)],
            Language.de,
            list_state_known=True,
            others={ANNA: [anna(1, NewsletterStatus.no), anna(2)]},
            defer_write_backs=True,
        )
    assert await person_events(resources) == []
    async with resources.sessionmaker() as session:
        (problem,) = (await session.scalars(select(Problem))).all()
    assert problem.reason_params == {"address": 1, "write_back_pending": True}

    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        assert await write_back_deferred(session, run_id, connection) == 1  # type: ignore[arg-type]
    (event,) = await person_events(resources)
    assert event["address_id"] == 1 and event["email"] == ANNA
    # Started again (a resumed job): the same event, not a second one.
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        await write_back_deferred(session, run_id, connection)  # type: ignore[arg-type]
    assert len(await person_events(resources)) == 1
