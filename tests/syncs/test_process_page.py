"""The page classifier against PostgreSQL: outcomes, the duplicate rule, overlapping pages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.contacts.values import Language
from app.db.models import Connection, Problem, SyncBatch, SyncRun
from app.db.session import unit_of_work
from app.resources import Resources
from app.syncs.classify import close_open_batch, process_page
from app.syncs.repository import SyncRepository
from onoffice_client.models import Address, NewsletterStatus
from tests.rows import add_connection


async def setup_run(resources: Resources) -> tuple[Connection, int]:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        connection = await add_connection(session, web_id="P1", list_id="L1")
        run = SyncRun(connection_id=connection.id, status="running")
        session.add(run)
        await session.flush()
        return connection, run.id


def address(i: int, email: str, **kw: Any) -> Address:
    return Address(
        id=i,
        email=email,
        first_name=f"F{i}",
        last_name=f"L{i}",
        newsletter=NewsletterStatus.yes,
        **kw,
    )


PAGE = [
    address(1, "anna@example.de", salutation="Frau"),
    address(2, " ANNA@example.de "),  # duplicate of 1 by case and spaces
    address(3, ""),  # missing
    address(4, "not-an-email"),  # invalid
    address(5, "bob@example.de", tags=["Kaeufer", "Mieter"]),
]


async def run_page(
    resources: Resources, connection: Connection, run_id: int, page: list[Address]
) -> None:
    async with unit_of_work(resources.sessionmaker, resources.queue) as session:
        await process_page(session, run_id, connection, page, Language.de, batch_limit=500)


class TestProcessPage:
    async def test_every_address_gets_exactly_one_outcome(self, resources: Resources) -> None:
        connection, run_id = await setup_run(resources)
        await run_page(resources, connection, run_id, PAGE)
        async with resources.sessionmaker() as session:
            run = await session.get(SyncRun, run_id)
            problems = {
                p.address_id: p.kind for p in (await session.execute(select(Problem))).scalars()
            }
            chunks = (await session.execute(select(SyncBatch))).scalars().all()
        assert run is not None
        assert run.onoffice_newsletter_total == 5
        assert (run.duplicates, run.missing_emails, run.invalid_emails) == (1, 1, 1)
        assert problems == {2: "duplicate", 3: "missing_email", 4: "invalid_email"}
        (chunk,) = chunks
        sent = {c["email"]: c for c in chunk.payload}
        assert set(sent) == {"anna@example.de", "bob@example.de"}
        assert sent["anna@example.de"]["greeting"] == "Sehr geehrte Frau L1"
        assert sent["bob@example.de"]["tags"] == ["Kaeufer", "Mieter"]
        assert run.open_batch_size == 2 and run.batches_total == 0

    async def test_a_repeated_page_is_not_counted_twice(self, resources: Resources) -> None:
        connection, run_id = await setup_run(resources)
        await run_page(resources, connection, run_id, PAGE)
        await run_page(resources, connection, run_id, [*PAGE[2:], address(6, "carl@example.de")])
        async with resources.sessionmaker() as session:
            run = await session.get(SyncRun, run_id)
            chunks = (await session.execute(select(SyncBatch))).scalars().all()
        assert run is not None
        assert run.onoffice_newsletter_total == 6
        assert run.open_batch_size == 3
        assert sorted(c["email"] for ch in chunks for c in ch.payload) == [
            "anna@example.de",
            "bob@example.de",
            "carl@example.de",
        ]

    async def test_the_duplicate_rule_holds_across_pages(self, resources: Resources) -> None:
        connection, run_id = await setup_run(resources)
        await run_page(resources, connection, run_id, [address(10, "x@example.de")])
        await run_page(resources, connection, run_id, [address(11, "X@Example.de")])
        async with resources.sessionmaker() as session:
            problem = (await session.execute(select(Problem))).scalar_one()
        assert (problem.address_id, problem.kind) == (11, "duplicate")
        assert "address 10" in problem.reason

    async def test_batches_close_at_the_limit(self, resources: Resources) -> None:
        connection, run_id = await setup_run(resources)
        for start in (0, 300, 600):
            page = [address(start + i, f"p{start + i}@example.de") for i in range(1, 301)]
            async with unit_of_work(resources.sessionmaker, resources.queue) as session:
                await process_page(session, run_id, connection, page, Language.de, batch_limit=500)
        async with unit_of_work(resources.sessionmaker, resources.queue) as session:
            await close_open_batch(SyncRepository.from_session(session), run_id)
        async with resources.sessionmaker() as session:
            run = await session.get(SyncRun, run_id)
            chunks = (
                (await session.execute(select(SyncBatch).order_by(SyncBatch.chunk_no)))
                .scalars()
                .all()
            )
        assert run is not None
        sizes: dict[int, int] = {}
        for chunk in chunks:
            sizes[chunk.batch_no] = sizes.get(chunk.batch_no, 0) + chunk.size
        # 300 + 200 | 100 + 300: each batch is filled to 500, a page may span two batches.
        assert sizes == {0: 500, 1: 400}
        assert [c.size for c in chunks] == [300, 200, 100, 300]
        assert run.batches_total == 2 and run.open_batch_size == 0

    async def test_a_pending_provider_unsubscribe_is_not_undone(self, resources: Resources) -> None:
        connection, run_id = await setup_run(resources)
        async with unit_of_work(resources.sessionmaker, resources.queue) as session:
            await process_page(
                session,
                run_id,
                connection,
                PAGE,
                Language.de,
                held_back=frozenset({"bob@example.de"}),
            )
        async with resources.sessionmaker() as session:
            run = await session.get(SyncRun, run_id)
            problem = (
                await session.execute(select(Problem).where(Problem.address_id == 5))
            ).scalar_one()
            (chunk,) = (await session.execute(select(SyncBatch))).scalars().all()
        assert run is not None and run.opted_out == 1 and run.rejected == 0
        assert problem.kind == "opted_out" and "opted out at Mailchimp" in problem.reason
        assert [c["email"] for c in chunk.payload] == ["anna@example.de"]
