"""Embedded mode (SQLite): a job that meets "database is locked" (a reading transaction that
must become a writer while another writer holds the database: SQLite answers at once instead of
waiting) is tried again within seconds, not after the ordinary job retry (the `make run`
demo's first sync of 10,000 addresses took minutes and printed a traceback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app.db.engine import create_engine
from app.worker.faults import is_infrastructure_fault


async def locked_error(tmp_path: Path) -> OperationalError:
    """The real error: A's read is still open when B commits a write; A then writes."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (0), (0)"))
        a_read = asyncio.Event()
        b_done = asyncio.Event()

        async def a() -> None:
            async with engine.begin() as conn:
                rows = await conn.stream(text("SELECT n FROM t"))
                await rows.fetchmany(1)
                a_read.set()
                await b_done.wait()
                await conn.execute(text("INSERT INTO t VALUES (1)"))

        async def b() -> None:
            await a_read.wait()
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
            b_done.set()

        with pytest.raises(OperationalError) as info:
            await asyncio.gather(a(), b())
        return info.value
    finally:
        await engine.dispose()


async def test_database_is_locked_is_a_transient_fault(tmp_path: Path) -> None:
    error = await locked_error(tmp_path)
    assert "locked" in str(error)
    assert is_infrastructure_fault(error)
