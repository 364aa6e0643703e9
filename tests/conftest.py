"""Shared fixtures: a fresh PostgreSQL database per test session, real Redis, the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Environment, Settings
from app.db import models  # noqa: F401  (registers the tables)
from app.db.base import Base
from app.db.engine import create_engine
from app.db.migrate import migrate
from app.resources import Resources, create_resources


def _isolate_xdist_worker() -> None:
    """Under pytest-xdist (`-n`), each worker gets a database and a Redis db of its own: set
    before any test module reads TEST_DB_NAME / TEST_REDIS_URL (this conftest loads first)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    if not worker:
        return
    index = int(worker.removeprefix("gw"))
    os.environ["TEST_DB_NAME"] = f"{os.environ.get('TEST_DB_NAME', 'connector_test')}_{worker}"
    base, _, db = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1").rpartition("/")
    os.environ["TEST_REDIS_URL"] = f"{base}/{int(db) + index}"


_isolate_xdist_worker()

PG_ADMIN_DSN = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB_NAME = os.environ.get("TEST_DB_NAME", "connector_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")


def pg_url(db_name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{db_name}"


async def recreate_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A freshly created, migrated PostgreSQL database for this test session."""
    asyncio.run(recreate_database(TEST_DB_NAME))
    url = pg_url(TEST_DB_NAME)
    migrate(url)
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        ENV=Environment.testing,
        DATABASE_URL=database_url,
        REDIS_URL=None,
        ONOFFICE_PROVIDER_SECRET="test-provider-secret",  # type: ignore[arg-type]
        PUBLIC_BASE_URL="https://connector.test",
    )


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    """The process's resources on the test database (jobs in-process), closed afterwards."""
    res = await create_resources(settings)
    yield res
    await res.aclose()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _clean_tables(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Tests that touch the database start from empty tables (jobs use their own sessions,
    so per-test transactions cannot isolate them)."""
    if "database_url" not in request.fixturenames:
        yield
        return
    url: str = request.getfixturevalue("database_url")
    engine = create_engine(url, pool_size=1)
    try:
        await truncate_all(engine)
    finally:
        await engine.dispose()
    yield


DEADLOCK = "40P01"


async def truncate_all(engine: AsyncEngine, attempts: int = 5) -> None:
    """Empty every table. A job a previous test left running (cancelled at its app's shutdown,
    its transaction not rolled back yet) can hold a row lock TRUNCATE needs while waiting for a
    table TRUNCATE has locked: PostgreSQL then aborts one of the two. When that is TRUNCATE, it
    is tried again once the other transaction has ended."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            return
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
            if attempt == attempts or (code != DEADLOCK and "deadlock" not in str(exc)):
                raise
            await asyncio.sleep(0.2 * attempt)


@pytest.fixture
def redis_url() -> str:
    return TEST_REDIS_URL


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    from arq.connections import ArqRedis

    client = ArqRedis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@contextlib.asynccontextmanager
async def running_app(
    app: FastAPI, base_url: str = "https://connector.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, and an HTTP client talking to it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client
