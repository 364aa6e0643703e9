"""Recovery in seconds: a job that fails on a lost database connection is tried again after a
short backoff (not left to the 150 s sweeps), and a drain that fails gives its ownership up at
once (the next kick or the sweep takes over without waiting out the flag's 130 s)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy.exc
from arq.worker import Retry
from sqlalchemy import text

from app.config import Settings
from app.inbox import owner
from app.resources import Resources, create_resources
from app.webhooks import drain
from app.webhooks.jobs import APPLY_TASK
from app.worker.faults import FAULT_BACKOFF_CAP_S, is_infrastructure_fault
from app.worker.queue import TASKS
from devkit.kit import free_port

PID = text("select pg_backend_pid()")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")


@pytest.fixture
async def db_down(settings: Settings) -> AsyncIterator[Resources]:
    """Resources whose PostgreSQL is down (nothing listens on its port), with a real Redis."""
    down = settings.model_copy(
        update={
            "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone",
            "REDIS_URL": TEST_REDIS_URL,
        }
    )
    res = await create_resources(down)
    yield res
    await res.aclose()


def connection_id() -> int:
    """A connection id no other test (or helper) uses in this Redis."""
    return 10_000_000 + uuid.uuid4().int % 10_000_000


async def test_a_drain_that_fails_on_a_database_error_releases_its_ownership(
    db_down: Resources,
) -> None:
    cid = connection_id()
    with pytest.raises(ConnectionRefusedError):
        await drain.run_drain(db_down, cid, None)
    assert db_down.redis is not None
    assert await db_down.redis.exists(f"connector:webhooks:drain:{cid}") == 0
    # A second drain can start at once.
    token = await owner.claim(db_down, cid)
    assert token is not None
    await owner.release(db_down, cid, token)


async def test_a_handed_over_drain_whose_flag_was_given_up_claims_it_again(
    db_down: Resources,
) -> None:
    """The retry of a failed hand-over job (it carries the old owner token) drains again,
    instead of ending because its token no longer owns the connection."""
    cid = connection_id()
    old = await owner.claim(db_down, cid)
    assert old is not None
    await owner.release(db_down, cid, old)  # what its failure did
    with pytest.raises(ConnectionRefusedError):  # it tried to drain (the database is down)
        await drain.run_drain(db_down, cid, old, step=1)
    assert await owner.claim(db_down, cid) is not None  # and gave the flag up again


async def test_a_kicked_drain_whose_worker_was_killed_owns_the_drain_on_its_next_try(
    db_down: Resources,
) -> None:
    """The killed try could not give its flag up; the job's next try (same job, another worker)
    drains at once instead of waiting 130 s for the flag to expire. Another job may not."""
    cid = connection_id()
    job = TASKS[APPLY_TASK].fn
    first_try = db_down.job_context() | {"job_id": f"j{cid}", "enqueue_time": "t1", "job_try": 1}
    assert await owner.claim(db_down, cid, f"j{cid}@t1")  # what the killed try held
    with pytest.raises(Retry):  # it drains (and fails on the database that is down)
        await job(first_try | {"job_try": 2}, connection_id=cid)
    other = first_try | {"enqueue_time": "t2"}  # a later kick while another drain owns it
    assert await owner.claim(db_down, cid, "someone-else")
    await job(other, connection_id=cid)  # a no-op: it does not drain


async def test_a_job_failing_on_a_lost_database_is_retried_within_seconds(
    db_down: Resources,
) -> None:
    cid = connection_id()
    job = TASKS[APPLY_TASK].fn
    ctx = db_down.job_context() | {"job_try": 1}
    with pytest.raises(Retry) as retry:
        await job(ctx, connection_id=cid)
    assert retry.value.defer_score is not None
    assert 0 < retry.value.defer_score <= FAULT_BACKOFF_CAP_S * 1000
    assert isinstance(retry.value.__cause__, ConnectionRefusedError)
    # Later tries wait at most FAULT_BACKOFF_CAP_S, too.
    ctx = db_down.job_context() | {"job_try": 6}
    with pytest.raises(Retry) as retry:
        await job(ctx, connection_id=cid)
    assert retry.value.defer_score is not None
    assert retry.value.defer_score <= FAULT_BACKOFF_CAP_S * 1000
    # The last try fails as before (the sweeps are the safety net).
    ctx = db_down.job_context() | {"job_try": db_down.settings.WORKER_MAX_TRIES}
    with pytest.raises(ConnectionRefusedError):
        await job(ctx, connection_id=cid)


async def test_lost_connections_are_infrastructure_faults_sql_errors_are_not(
    resources: Resources,
) -> None:
    """Real errors: a backend terminated by the server (as at a PostgreSQL restart) is a fault;
    a wrong statement is not (retrying it would only repeat it)."""
    async with resources.engine.connect() as conn:
        pid = (await conn.execute(text("select pg_backend_pid()"))).scalar_one()
        async with resources.engine.connect() as other:
            await other.execute(text(f"select pg_terminate_backend({int(pid)})"))
        await asyncio.sleep(0.1)
        with pytest.raises(sqlalchemy.exc.DBAPIError) as lost:
            await conn.execute(text("select 1"))
    assert is_infrastructure_fault(lost.value)
    async with resources.engine.connect() as conn:
        with pytest.raises(sqlalchemy.exc.DBAPIError) as wrong:
            await conn.execute(text("select * from no_such_table"))
    assert not is_infrastructure_fault(wrong.value)
    with pytest.raises(ConnectionRefusedError) as refused:
        await asyncio.open_connection("127.0.0.1", free_port())
    assert is_infrastructure_fault(refused.value)


@pytest.mark.parametrize("pre_ping", [False, True])
async def test_a_pooled_connection_the_server_closed_is_replaced_at_checkout(
    database_url: str, pre_ping: bool
) -> None:
    """Every pooled connection terminated by the server while idle (as at a PostgreSQL
    restart): the next checkouts get live ones, with the default (asyncpg's own state, no round
    trip) and with `DATABASE_POOL_PRE_PING` (SQLAlchemy asks the server)."""
    from app.db.engine import create_engine

    engine = create_engine(database_url, pool_size=2, max_overflow=0, pool_pre_ping=pre_ping)
    admin = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as a, engine.connect() as b:
            pids = [(await c.execute(PID)).scalar_one() for c in (a, b)]
        async with admin.connect() as conn:
            for pid in pids:
                await conn.execute(text(f"select pg_terminate_backend({int(pid)})"))
        await asyncio.sleep(0.2)  # the closed sockets reach the event loop
        async with engine.connect() as a, engine.connect() as b:
            fresh = [(await c.execute(PID)).scalar_one() for c in (a, b)]
        assert not set(fresh) & set(pids)
    finally:
        await engine.dispose()
        await admin.dispose()
