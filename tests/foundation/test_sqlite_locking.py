"""Embedded mode (SQLite): a transaction that reads and then writes waits for a concurrent
writer instead of failing at once with "database is locked" (the `make run` demo's first sync
hit it and waited for a job retry: 180 s instead of a few)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from app.db.engine import create_engine


async def test_a_reader_that_writes_waits_for_the_other_writer(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lock.db'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (0), (0)"))
        a_read = asyncio.Event()

        async def a() -> None:
            async with engine.begin() as conn:
                # A read that is still open (a page of rows being consumed) pins A's
                # snapshot; B then commits a write, and A's own write comes after it.
                rows = await conn.stream(text("SELECT n FROM t"))
                await rows.fetchmany(1)
                a_read.set()
                await asyncio.sleep(0.3)  # meanwhile B wants to write
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                await rows.close()

        async def b() -> None:
            await a_read.wait()
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))

        await asyncio.gather(a(), b())
        async with engine.connect() as conn:
            values = (await conn.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all()
        assert values == [0, 0, 1, 2]
    finally:
        await engine.dispose()
