"""Fault tests: the connector's processes against throwaway Redis (and PostgreSQL) instances of
their own, which the tests kill and restart. The shared test services are never touched."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import asyncpg
import httpx
import pytest

from app.config import Settings
from app.db.migrate import migrate
from devkit.kit import free_port
from devkit.servers import LocalPostgres, LocalRedis, MissingBinary
from emulators.mailchimp import DEFAULT_API_KEY
from tests.e2e.conftest import World, e2e_settings, http, world  # noqa: F401  (fixtures used here)
from tests.e2e.harness import ROOT, Connector, Tenant, auth, connect_tenant, start_connector
from tests.e2e.test_webhooks import address

# Addresses of the full-sync and webhook fault scenarios (`stack`).
FAULT_ADDRESSES = 150


class ThrowawayRedis(LocalRedis):
    """A redis-server of this test on a free port, without persistence."""

    def __init__(self) -> None:
        try:
            super().__init__(free_port())
        except MissingBinary as exc:
            pytest.skip(str(exc))


class ThrowawayPostgres(LocalPostgres):
    """A PostgreSQL cluster of this test on a free port."""

    def __init__(self) -> None:
        try:
            super().__init__(free_port())
        except MissingBinary as exc:
            pytest.skip(str(exc))


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def throwaway_redis() -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


def start_worker_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`connector worker` (both queues) as its own process, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            cwd=ROOT,
            env=env | {"LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@pytest.fixture
def pg_database(throwaway_postgres: ThrowawayPostgres) -> Iterator[str]:
    async def create() -> None:
        conn = await asyncpg.connect(throwaway_postgres.url().replace("+asyncpg", ""))
        try:
            await conn.execute('CREATE DATABASE "connector"')
        finally:
            await conn.close()

    asyncio.run(create())
    url = throwaway_postgres.url("connector")
    migrate(url)
    yield url


@dataclass
class Stack:
    """The connector of a fault scenario and its worker processes."""

    world: World
    http: httpx.AsyncClient
    connector: Connector
    redis_url: str
    tmp: Path
    token: str = ""
    list_id: str = ""
    workers: list[tuple[Popen[bytes], Path]] = field(default_factory=list)

    def start_worker(self) -> Popen[bytes]:
        log = self.tmp / f"worker{len(self.workers) + 1}.log"
        proc = start_worker_process(self.connector.env, log)
        self.workers.append((proc, log))
        return proc

    def exited(self, but: Popen[bytes] | None = None) -> list[str]:
        return [
            f"{log.name} (rc {p.returncode}):\n{log_tail(log)}"
            for p, log in self.workers
            if p is not but and p.poll() is not None
        ]

    async def start_sync(self) -> int:
        started = await self.http.post(
            f"{self.connector.url}/api/v1/syncs", headers=auth(self.token)
        )
        assert started.status_code == 202, started.text
        return int(started.json()["id"])

    async def wait_run(self, run_id: int, wait_s: float = 120) -> dict[str, Any]:
        """Poll the run until it ended (or wait_s passed); the run as last read."""
        deadline = time.monotonic() + wait_s
        run = await self.run(run_id)
        while run.get("status") not in ("completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"the run did not end: {run}"
            await asyncio.sleep(0.2)
            run = await self.run(run_id)
        return run

    async def run(self, run_id: int) -> dict[str, Any]:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await self.http.get(
                f"{self.connector.url}/api/v1/syncs/{run_id}", headers=auth(self.token), timeout=5
            )
            if response.status_code == 200:
                return dict(response.json())
        return {}


@pytest.fixture
async def stack(
    world: World,  # noqa: F811
    e2e_settings: Settings,  # noqa: F811
    http: httpx.AsyncClient,  # noqa: F811
    pg_database: str,
    throwaway_redis: ThrowawayRedis,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """API (in this process), a PostgreSQL and a Redis of the test, a connected Mailchimp tenant
    and FAULT_ADDRESSES newsletter addresses; the test starts the workers."""
    n = FAULT_ADDRESSES
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, n + 1)])
    settings = e2e_settings.model_copy(
        update={
            "DATABASE_URL": pg_database,
            "REDIS_URL": throwaway_redis.url,
            "SYNC_BATCH_SIZE": 50,
            "ONOFFICE_PAGE_SIZE": 50,
            "LOG_LEVEL": "INFO",
        }
    )
    connector = start_connector(settings)
    s = Stack(world, http, connector, throwaway_redis.url, tmp_path)
    try:
        tenant = Tenant("F1", "f" * 32, "g" * 64, "claim-f")
        s.token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
        )
        s.list_id = saved["list_id"]
        # Every Mailchimp request takes a while: a batch is in flight long enough to hit.
        world.mailchimp.latency_s = 0.2
        yield s
    finally:
        for proc, _log in s.workers:
            stop_process(proc)
        connector.stop()
