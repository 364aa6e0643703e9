"""The ledger writer's verbs against PostgreSQL: each writes the contact row, the problem row,
the consent history entry and the write-back event that belong together, and nothing before
`save` (in the caller's transaction)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.contacts.repository import ContactRepository
from app.contacts.rules import SUBSCRIBED, Signal
from app.contacts.writer import LedgerWriter
from app.db.base import utcnow
from app.db.history_models import ConsentHistory
from app.db.models import Connection, Contact, InboundEvent, Problem, SyncRun
from app.i18n.reasons import read_rejection, rejection_code
from app.resources import Resources
from providers.base import RejectReason
from tests.rows import add_connection


async def connected(resources: Resources) -> Connection:
    async with resources.transaction() as session:
        return await add_connection(session, web_id="W1", list_id="L1")


async def start_run(resources: Resources, connection: Connection) -> int:
    async with resources.transaction() as session:
        run = SyncRun(connection_id=connection.id, status="running")
        session.add(run)
        await session.flush()
        return run.id


async def add_contact(resources: Resources, connection: Connection, **values: object) -> Contact:
    async with resources.transaction() as session:
        contact = Contact(connection_id=connection.id, tags=[], **values)
        session.add(contact)
        await session.flush()
        return contact


async def save(resources: Resources, ledger: LedgerWriter) -> None:
    async with resources.transaction() as session:
        await ledger.save(session)


async def contacts(resources: Resources) -> dict[str, Contact]:
    async with resources.sessionmaker() as session:
        return {c.email: c for c in (await session.scalars(select(Contact))).all()}


async def history(resources: Resources) -> list[tuple[str, str, str, str | None, str | None]]:
    async with resources.sessionmaker() as session:
        rows = (await session.scalars(select(ConsentHistory).order_by(ConsentHistory.id))).all()
    return [(h.email, h.kind, h.value, h.source_ref, h.note) for h in rows]


async def problems(resources: Resources) -> dict[int, Problem]:
    async with resources.sessionmaker() as session:
        return {p.address_id: p for p in (await session.scalars(select(Problem))).all()}


async def events(resources: Resources) -> list[InboundEvent]:
    async with resources.sessionmaker() as session:
        return list((await session.scalars(select(InboundEvent))).all())


class TestPushVerbs:
    async def test_synced_creates_the_row_and_records_one_subscribe(
        self, resources: Resources
    ) -> None:
        connection = await connected(resources)
        ledger = LedgerWriter.for_push(connection)
        seen = {"pushed_at": utcnow(), "onoffice_status": "yes"}
        ledger.synced(
            None, address_id=7, email="anna@example.de", fingerprint="h1", tags=["A"], seen=seen
        )
        assert await contacts(resources) == {}  # nothing before save
        await save(resources, ledger)
        row = (await contacts(resources))["anna@example.de"]
        assert (row.address_id, row.synced_hash, row.tags) == (7, "h1", ["A"])
        assert row.subscribed is True and row.provider_status == SUBSCRIBED
        assert row.onoffice_status == "yes" and row.pushed_at is not None
        assert await history(resources) == [("anna@example.de", "action", "subscribe", None, None)]
        # Synced again while subscribed: the row is updated, no second subscribe in the history.
        again = LedgerWriter.for_push(connection)
        again.synced(row, address_id=7, email=row.email, fingerprint="h2", tags=[])
        await save(resources, again)
        assert (await contacts(resources))["anna@example.de"].synced_hash == "h2"
        assert len(await history(resources)) == 1

    async def test_unsubscribed_and_moved_write_the_row_and_the_history(
        self, resources: Resources
    ) -> None:
        connection = await connected(resources)
        old = await add_contact(
            resources, connection, address_id=1, email="old@example.de", subscribed=True
        )
        other = await add_contact(
            resources, connection, address_id=2, email="bob@example.de", subscribed=True
        )
        ledger = LedgerWriter.for_push(connection)
        ledger.moved(old, "new@example.de")
        ledger.unsubscribed(other, note="email")
        assert old.email == "new@example.de"  # the push reads its row again: it shows the move
        await save(resources, ledger)
        rows = await contacts(resources)
        assert set(rows) == {"new@example.de", "bob@example.de"}
        bob = rows["bob@example.de"]
        assert bob.subscribed is False and bob.provider_status == "unsubscribed"
        assert await history(resources) == [
            ("bob@example.de", "action", "unsubscribe", None, "email")
        ]

    async def test_refused_updates_the_address_row_or_creates_one(
        self, resources: Resources
    ) -> None:
        connection = await connected(resources)
        await add_contact(resources, connection, address_id=1, email="anna@example.de")
        ledger = LedgerWriter.for_push(connection)
        ledger.refused(1, "anna@example.de", "Invalid Resource")
        ledger.refused(2, "bob@example.de", "x" * 3000)
        await save(resources, ledger)
        rows = await contacts(resources)
        assert rows["anna@example.de"].rejected_reason == "Invalid Resource"
        assert rows["bob@example.de"].address_id == 2
        assert len(rows["bob@example.de"].rejected_reason or "") == 2000

    async def test_opted_out_stores_the_write_back_and_a_kept_state(
        self, resources: Resources
    ) -> None:
        connection = await connected(resources)
        row = await add_contact(
            resources, connection, address_id=1, email="anna@example.de", subscribed=True
        )
        at = utcnow() - timedelta(minutes=5)
        ledger = LedgerWriter.for_push(connection)
        ledger.opted_out(row, "anna@example.de", Signal("unsubscribed", at), kept=True)
        await save(resources, ledger)
        stored = (await contacts(resources))["anna@example.de"]
        assert stored.subscribed is False and stored.provider_status == "unsubscribed"
        (event,) = await events(resources)
        assert event.payload["type"] == "unsubscribe"
        assert event.payload["email"] == "anna@example.de"
        assert event.connection_id == connection.id

    async def test_duplicate_adds_an_address_once(self, resources: Resources) -> None:
        connection = await connected(resources)
        row = await add_contact(
            resources, connection, address_id=1, email="anna@example.de", other_address_ids=[3]
        )
        ledger = LedgerWriter.for_push(connection)
        ledger.duplicate(row, 3)  # known already
        ledger.duplicate(row, 4)
        await save(resources, ledger)
        assert (await contacts(resources))["anna@example.de"].other_address_ids == [3, 4]


class TestRunVerbs:
    async def test_rejected_and_withdrawn_write_problem_rows_and_the_plain_row(
        self, resources: Resources
    ) -> None:
        connection = await connected(resources)
        run_id = await start_run(resources, connection)
        await add_contact(
            resources, connection, address_id=1, email="anna@example.de", synced_hash="h0"
        )
        async with resources.transaction() as session:
            rows = await ContactRepository.from_session(session).ledger_rows(
                connection.id, ["anna@example.de"]
            )
            ledger = LedgerWriter.for_run(connection, run_id)
            ledger.rejected(
                rows["anna@example.de"],
                address_id=1,
                email="anna@example.de",
                code=RejectReason.invalid_email,
                detail="Invalid Resource: looks fake",
                provider="Mailchimp",
                rejected_hash="r1",
            )
            ledger.rejected(
                None, address_id=2, email="x@example.de", code=None, detail=None, provider="Brevo"
            )
            ledger.withdrawn(3, "bob@example.de", "Mailchimp")
            await ledger.save(session)
        found = await problems(resources)
        assert {a: p.kind for a, p in found.items()} == {
            1: "rejected",
            2: "rejected",
            3: "opted_out",
        }
        assert found[1].reason == "Invalid Resource: looks fake"
        assert found[1].reason_code == rejection_code(RejectReason.invalid_email)
        assert found[2].reason_code == rejection_code(None)
        assert found[3].reason_params == {"provider": "Mailchimp"}
        assert all(p.run_id == run_id for p in found.values())
        anna = (await contacts(resources))["anna@example.de"]
        assert (anna.synced_hash, anna.rejected_hash) == (None, "r1")
        assert read_rejection(anna.rejected_reason)[:2] == (
            rejection_code(RejectReason.invalid_email),
            "Invalid Resource: looks fake",
        )
        # A run creates no rows: the page did (x@example.de has none).
        assert set(await contacts(resources)) == {"anna@example.de"}

    async def test_left_onoffice_unsubscribes_with_both_history_entries(
        self, resources: Resources
    ) -> None:
        connection = await connected(resources)
        run_id = await start_run(resources, connection)
        row = await add_contact(
            resources,
            connection,
            address_id=1,
            email="anna@example.de",
            subscribed=True,
            onoffice_status="yes",
        )
        ledger = LedgerWriter.for_run(connection, run_id)
        ledger.left_onoffice(row, note="approved")
        await save(resources, ledger)
        stored = (await contacts(resources))["anna@example.de"]
        assert (stored.subscribed, stored.onoffice_status) == (False, "absent")
        assert await history(resources) == [
            ("anna@example.de", "signal", "absent", str(run_id), None),
            ("anna@example.de", "action", "unsubscribe", str(run_id), "approved"),
        ]

    async def test_a_rolled_back_unit_of_work_writes_nothing(self, resources: Resources) -> None:
        connection = await connected(resources)
        run_id = await start_run(resources, connection)
        ledger = LedgerWriter.for_run(connection, run_id)
        ledger.withdrawn(1, "anna@example.de", "Mailchimp")
        ledger.opted_out(None, "bob@example.de", Signal("unsubscribed", utcnow()))
        try:
            async with resources.transaction() as session:
                await ledger.save(session)
                raise RuntimeError("the batch failed after the writes")
        except RuntimeError:
            pass
        assert await problems(resources) == {} and await events(resources) == []


class TestRunOnlyVerbs:
    async def test_tags_refused_stale_unsent_and_the_list_state(self, resources: Resources) -> None:
        connection = await connected(resources)
        run_id = await start_run(resources, connection)
        anna = await add_contact(
            resources, connection, address_id=1, email="anna@example.de", synced_hash="h1"
        )
        bob = await add_contact(
            resources, connection, address_id=2, email="bob@example.de", synced_hash="h2"
        )
        ledger = LedgerWriter.for_run(connection, run_id)
        ledger.tags_refused(anna, 1, anna.email, "Invalid segment", "Mailchimp")
        ledger.unsent([bob.email])
        ledger.stale([anna.id])
        ledger.listed(
            [
                {
                    "email": "anna@example.de",
                    "status": "subscribed",
                    "changed_at": None,
                    "tags": [],
                    "provider_id": None,
                }
            ]
        )
        ledger.member_tags({"anna@example.de": ["Kaeufer"]})
        await save(resources, ledger)
        rows = await contacts(resources)
        assert rows["anna@example.de"].synced_hash is None  # sent again by the next run
        assert rows["bob@example.de"].synced_hash is None
        assert rows["anna@example.de"].stale_run_id == run_id
        assert rows["bob@example.de"].stale_run_id is None
        (problem,) = (await problems(resources)).values()
        assert problem.kind == "rejected" and problem.reason.endswith("Invalid segment")
        async with resources.sessionmaker() as session:
            tags = await ContactRepository.from_session(session).member_tags(
                connection.id, run_id, ["anna@example.de"]
            )
        assert tags == {"anna@example.de": ["Kaeufer"]}
        # A re-read found anna on Yes again: her mark goes.
        back = LedgerWriter.for_run(connection, run_id)
        back.stale([anna.id], confirmed=False)
        await save(resources, back)
        assert (await contacts(resources))["anna@example.de"].stale_run_id is None
