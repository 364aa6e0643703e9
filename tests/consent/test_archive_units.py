"""The full sync's page classifier on archived members and bounces (issue #17 stories 2 and 9),
against PostgreSQL; the reproduction test_full_sync_writes_back_every_archived_member_unheld
turned into the correct behaviour."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.contacts.values import Language
from app.db.base import utcnow
from app.db.models import Connection, Contact, InboundEvent, Problem, ProviderMember, SyncRun
from app.db.session import unit_of_work
from app.resources import Resources
from app.syncs.classify import process_page
from onoffice_client.models import Address, NewsletterStatus
from tests.rows import add_connection


def yes(i: int, email: str) -> Address:
    return Address(
        id=i, email=email, first_name="F", last_name=f"L{i}", newsletter=NewsletterStatus.yes
    )


async def new_run(resources: Resources, connection_id: int) -> int:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        run = SyncRun(connection_id=connection_id, status="running", provider_read_done=True)
        session.add(run)
        await session.flush()
        return run.id


async def members(
    resources: Resources, connection_id: int, run_id: int, states: dict[str, str]
) -> None:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        for email, status in states.items():
            session.add(
                ProviderMember(
                    connection_id=connection_id, run_id=run_id, email=email, status=status,
                    changed_at=utcnow() - timedelta(hours=2), tags=[],
                )
            )  # fmt: skip


async def classify(
    resources: Resources, connection: Connection, run_id: int, page: list[Address]
) -> None:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        await process_page(session, run_id, connection, page, Language.de, list_state_known=True)


async def test_full_sync_lists_archived_members_and_writes_nothing_back(
    resources: Resources,
) -> None:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        connection = await add_connection(session, web_id="A1", list_id="L1")
        for i in range(1, 31):  # 30 contacts synced yesterday, then "Archive All" this morning
            session.add(
                Contact(
                    connection_id=connection.id, address_id=i, email=f"p{i}@example.de",
                    tags=[], synced_hash="h", subscribed=True, provider_status="subscribed",
                    provider_changed_at=utcnow() - timedelta(days=1), onoffice_status="yes",
                )
            )  # fmt: skip
    run_id = await new_run(resources, connection.id)
    await members(
        resources, connection.id, run_id, {f"p{i}@example.de": "archived" for i in range(1, 31)}
    )
    await classify(
        resources, connection, run_id, [yes(i, f"p{i}@example.de") for i in range(1, 31)]
    )
    async with resources.sessionmaker() as session:
        events = (await session.scalars(select(InboundEvent))).all()
        problems = (await session.scalars(select(Problem))).all()
        run = await session.get(SyncRun, run_id)
        contacts = (await session.scalars(select(Contact))).all()
    assert events == []  # 14d94d8: 30 unheld "deleted" write-backs ("not specified")
    assert len(problems) == 30 and {p.kind for p in problems} == {"archived"}
    assert {p.reason_code for p in problems} == {"archived_provider"}
    assert run is not None and (run.archived, run.opted_out) == (30, 0)
    assert {(c.provider_status, c.subscribed) for c in contacts} == {("archived", False)}


async def test_a_bounce_found_by_the_full_sync_is_written_back_once_and_never_as_no(
    resources: Resources,
) -> None:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        connection = await add_connection(session, web_id="B1", list_id="L1")
    page = [yes(1, "p1@example.de"), yes(2, "p2@example.de")]
    states = {"p1@example.de": "cleaned", "p2@example.de": "subscribed"}
    first = await new_run(resources, connection.id)
    await members(resources, connection.id, first, states)
    await classify(resources, connection, first, page)
    async with resources.sessionmaker() as session:
        events = (await session.scalars(select(InboundEvent))).all()
        run = await session.get(SyncRun, first)
    # One event: the webhook applier writes its activity and keeps onOffice's value.
    assert [(e.payload["type"], e.payload["email"]) for e in events] == [
        ("cleaned", "p1@example.de")
    ]
    assert run is not None and run.bounced == 1
    # The next run knows the bounce from the ledger: no second activity.
    second = await new_run(resources, connection.id)
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        await session.execute(ProviderMember.__table__.delete())
    await members(resources, connection.id, second, states)
    await classify(resources, connection, second, page)
    async with resources.sessionmaker() as session:
        assert len((await session.scalars(select(InboundEvent))).all()) == 1
        problems = (await session.scalars(select(Problem).where(Problem.run_id == second))).all()
    assert [(p.address_id, p.kind) for p in problems] == [(1, "bounced")]
