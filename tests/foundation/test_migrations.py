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
