"""The incremental push core called directly: the database and a provider client, no job, no
factory (the Mailchimp emulator in-process, PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app.db.base import utcnow
from app.db.history_models import ConsentHistory
from app.db.models import Connection, Contact, InboundEvent
from app.incremental.push import push_addresses
from app.resources import Resources
from emulators.mailchimp import MailchimpState, subscriber_hash
from onoffice_client.models import Address, NewsletterStatus
from providers.base import FieldMapping
from providers.mailchimp import MailchimpClient
from tests.rows import add_connection, mailchimp_client


@pytest.fixture
def mailchimp() -> MailchimpState:
    return MailchimpState()


@pytest.fixture
async def provider(mailchimp: MailchimpState) -> AsyncIterator[MailchimpClient]:
    async with mailchimp_client(mailchimp) as client:
        yield client
    assert mailchimp.spec_violations == []


async def connected(resources: Resources, provider: MailchimpClient) -> Connection:
    found = await provider.ensure_list("onoffice")
    mapping: FieldMapping = await provider.ensure_fields(found.id)
    async with resources.transaction() as session:
        return await add_connection(session, list_id=found.id, field_mapping=mapping.model_dump())


def anna(newsletter: NewsletterStatus = NewsletterStatus.yes) -> Address:
    return Address(
        id=1, email="Anna@Example.de ", first_name="Anna", last_name="Alt", newsletter=newsletter
    )


def writes(mailchimp: MailchimpState) -> int:
    return sum(n for key, n in mailchimp.request_counts.items() if not key.startswith("GET"))


class TestPushCore:
    async def test_a_yes_is_subscribed_once_and_an_unchanged_one_costs_nothing(
        self, resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState
    ) -> None:
        connection = await connected(resources, provider)
        stats = await push_addresses(resources, provider, connection, [anna()])
        assert stats.upserted == 1
        member = mailchimp.lists[connection.list_id or ""].members[
            subscriber_hash("anna@example.de")
        ]
        assert member.status == "subscribed" and member.merge_fields["LNAME"] == "Alt"
        before = writes(mailchimp)
        again = await push_addresses(resources, provider, connection, [anna()])
        assert again.unchanged == 1 and writes(mailchimp) == before
        # No in onOffice: unsubscribed at the provider, and the ledger knows.
        gone = await push_addresses(resources, provider, connection, [anna(NewsletterStatus.no)])
        assert gone.unsubscribed == 1 and member.status == "unsubscribed"
        async with resources.sessionmaker() as session:
            (row,) = (await session.scalars(select(Contact))).all()
        assert row.email == "anna@example.de" and row.subscribed is False

    async def test_a_stale_yes_does_not_undo_a_newer_provider_opt_out(
        self, resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState
    ) -> None:
        connection = await connected(resources, provider)
        await push_addresses(resources, provider, connection, [anna()])
        member = mailchimp.lists[connection.list_id or ""].members[
            subscriber_hash("anna@example.de")
        ]
        # anna unsubscribed at Mailchimp (its webhook lost); onOffice's Yes is an hour older.
        member.status = "unsubscribed"
        now = utcnow()
        async with resources.transaction() as session:
            row = (await session.scalars(select(Contact))).one()
            row.onoffice_changed_at = now - timedelta(hours=1)
            row.provider_status, row.provider_changed_at = "unsubscribed", now
            row.subscribed = False
        before = writes(mailchimp)
        # An edit of her name in onOffice: the address comes again, still newsletter Yes.
        renamed = anna().model_copy(update={"last_name": "Neu"})
        stats = await push_addresses(resources, provider, connection, [renamed])
        assert stats.written_back == 1 and stats.upserted == 0
        assert member.status == "unsubscribed" and writes(mailchimp) == before
        async with resources.sessionmaker() as session:
            (event,) = (await session.scalars(select(InboundEvent))).all()
        assert (
            event.payload["type"] == "unsubscribe" and event.payload["email"] == "anna@example.de"
        )


class TestOneTransactionPerAddress:
    async def test_a_failing_ledger_write_leaves_the_other_addresses_recorded(
        self, resources: Resources, provider: MailchimpClient, mailchimp: MailchimpState
    ) -> None:
        connection = await connected(resources, provider)
        bob = Address(
            id=2, email="bob@example.de", first_name="Bob", newsletter=NewsletterStatus.yes
        )
        carl = Address(
            id=3, email="carl@example.de", first_name="Carl", newsletter=NewsletterStatus.yes
        )
        # A real constraint the database enforces on bob's row only.
        async with resources.transaction() as session:
            await session.execute(
                text(
                    "ALTER TABLE contact ADD CONSTRAINT test_no_bob"
                    " CHECK (email <> 'bob@example.de')"
                )
            )
        try:
            stats = await push_addresses(resources, provider, connection, [anna(), bob, carl])
        finally:
            async with resources.transaction() as session:
                await session.execute(text("ALTER TABLE contact DROP CONSTRAINT test_no_bob"))
        assert stats.upserted == 3 and stats.unrecorded == 1
        members = mailchimp.lists[connection.list_id or ""].members
        assert all(
            members[subscriber_hash(e)].status == "subscribed"
            for e in ("anna@example.de", "bob@example.de", "carl@example.de")
        )
        async with resources.sessionmaker() as session:
            rows = {c.email: c for c in (await session.scalars(select(Contact))).all()}
            entries = (await session.scalars(select(ConsentHistory))).all()
        # The addresses before and after bob's failed write are recorded, bob's writes are not
        # (its row and its history entries went together).
        assert set(rows) == {"anna@example.de", "carl@example.de"}
        assert all(row.subscribed for row in rows.values())
        assert {e.email for e in entries} == {"anna@example.de", "carl@example.de"}
