from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect

from app.db import models  # noqa: F401  (registers the tables)
from app.db.base import Base
from app.db.engine import create_engine
from app.db.migrate import alembic_config
from tests.conftest import drop_database, pg_url, recreate_database

EXPECTED_TABLES = {t.name for t in Base.metadata.sorted_tables}


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def round_trip(url: str) -> None:
    cfg = alembic_config(url)
    await _run(command.upgrade, cfg, "head")
    assert await table_names(url) == EXPECTED_TABLES
    await _run(command.downgrade, cfg, "base")
    assert await table_names(url) == set()
    await _run(command.upgrade, cfg, "head")
    assert await table_names(url) == EXPECTED_TABLES


async def _run(fn: object, *args: object) -> None:
    # Alembic's env.py runs its own event loop; keep it off ours.
    import asyncio

    await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]


class TestMigrations:
    async def test_round_trip_on_postgresql(self, unique: str) -> None:
        name = f"connector_mig_{unique}"
        await recreate_database(name)
        try:
            await round_trip(pg_url(name))
        finally:
            await drop_database(name)

    async def test_round_trip_on_sqlite(self, tmp_path: Path) -> None:
        await round_trip(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")

    @pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
    def test_models_match_migrations(self, dialect: str, tmp_path: Path, unique: str) -> None:
        """Autogenerate finds nothing to add: the migrations and the models agree."""
        import asyncio

        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        if dialect == "postgresql":
            name = f"connector_cmp_{unique}"
            asyncio.run(recreate_database(name))
            url = pg_url(name)
        else:
            url = f"sqlite+aiosqlite:///{tmp_path / 'cmp.db'}"
        try:
            command.upgrade(alembic_config(url), "head")

            async def diff() -> list[object]:
                engine = create_engine(url)
                async with engine.connect() as conn:
                    result = await conn.run_sync(
                        lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
                    )
                await engine.dispose()
                return list(result)

            assert asyncio.run(diff()) == []
        finally:
            if dialect == "postgresql":
                asyncio.run(drop_database(name))


async def test_old_onoffice_events_are_copied_to_each_connection_at_the_upgrade(
    unique: str,
) -> None:
    """0017: an onOffice event stored before the inbox (no connection) and still pending is
    drained after the upgrade: one copy per connection of its customer, the original stamped
    applied; a customer with no connection has nothing to push."""
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import async_sessionmaker

    from app.db.models import Connection, InboundEvent, Tenant
    from tests.rows import add_connection

    name = f"connector_mig17_{unique}"
    await recreate_database(name)
    url = pg_url(name)
    cfg = alembic_config(url)
    engine = create_engine(url)
    try:
        await _run(command.upgrade, cfg, "0016_planner_parked_ledger")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions.begin() as session:
            first = await add_connection(session, web_id="W1", token="a")
            second = Connection(
                tenant_id=first.tenant_id, provider="brevo", api_key_encrypted=b"x",
                webhook_token="b", group_id="G2",
            )  # fmt: skip
            lonely = Tenant(customer_web_id="W2")
            session.add_all([second, lonely])
            await session.flush()
            for tenant_id, key in ((first.tenant_id, "sig1"), (lonely.id, "sig2")):
                session.add(
                    InboundEvent(
                        source="onoffice",
                        dedupe_key=key,
                        tenant_id=tenant_id,
                        payload={"tenant_id": tenant_id, "address_id": 7},
                        status="pending",
                    )
                )
        await _run(command.upgrade, cfg, "head")
        async with sessions() as session:
            rows = (await session.execute(select(InboundEvent))).scalars().all()
        by_key = {r.dedupe_key: r for r in rows}
        assert by_key["sig1"].status == "applied" and by_key["sig2"].status == "applied"
        copies = {r.connection_id: r for r in rows if r.connection_id is not None}
        assert set(copies) == {first.id, second.id}
        assert all(c.status == "pending" and c.payload["address_id"] == 7 for c in copies.values())
        assert {c.dedupe_key for c in copies.values()} == {
            f"c{first.id}:sig1",
            f"c{second.id}:sig1",
        }
    finally:
        await engine.dispose()
        await drop_database(name)
