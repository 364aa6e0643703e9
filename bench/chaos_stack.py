"""The process stack of `bench/chaos.py`: its own PostgreSQL cluster and Redis (never the shared
services), the emulators, the API and two workers on ports from `--port-base`, and the faults
it injects (a dependency stopped and started, a process killed and started again as a
supervisor would)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.stack import (
    MAILCHIMP_KEY,
    BenchError,
    Proc,
    Stack,
    activate_and_connect,
    connector_env,
    database_url,
    fresh_database,
    latency_options,
    start_emulator,
    wait_http,
)
from devkit.kit import free_port
from devkit.servers import LocalPostgres, LocalRedis

FAULT_DOWN_S = 2.0  # how long a dependency stays down


@dataclass
class Infra:
    """The benchmark's own PostgreSQL and Redis, and the ports of everything else."""

    redis: LocalRedis
    pg: LocalPostgres
    ports: list[int]

    @classmethod
    def start(cls, port_base: int) -> Infra:
        ports = [port_base + i for i in range(5)] if port_base else []
        ports = ports or [free_port() for _ in range(5)]
        redis = LocalRedis(ports[0], prefix="chaos-redis-")
        redis.start()
        pg = LocalPostgres(ports[1], prefix="chaos-pg-")
        pg.start()
        return cls(redis, pg, ports)

    def close(self) -> None:
        self.redis.close()
        self.pg.close()

    def args(self, base: argparse.Namespace) -> argparse.Namespace:
        """The namespace bench.stack's helpers read (database and Redis of this benchmark)."""
        return argparse.Namespace(
            **{
                **vars(base),
                "db_name": "connector_chaos",
                "pg_admin_dsn": f"postgresql://postgres@127.0.0.1:{self.pg.port}/postgres",
                "redis_base": f"redis://127.0.0.1:{self.redis.port}",
                "redis_db": 0,
            }
        )


@dataclass
class Running:
    stack: Stack
    client: httpx.AsyncClient
    args: argparse.Namespace
    env: dict[str, str]
    api: str
    onoffice: str
    mailchimp: str
    token: str = ""
    list_id: str = ""
    killed: list[Proc] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def workers(self) -> list[Proc]:
        return [p for p in self.stack.procs if p.name.startswith("worker")]

    def exited(self) -> list[str]:
        """The connector's processes that ended by themselves (not killed by the benchmark)."""
        return [
            f"{p.name} (rc {p.popen.returncode})"
            for p in self.stack.procs
            if p.name.startswith(("api", "worker")) and not p.alive() and p not in self.killed
        ]

    async def run(self, run_id: int) -> dict[str, Any]:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            r = await self.client.get(
                f"{self.api}/api/v1/syncs/{run_id}", headers=self.headers, timeout=5
            )
            if r.status_code == 200:
                return dict(r.json())
        return {}

    async def start_sync(self) -> int:
        r = await self.client.post(f"{self.api}/api/v1/syncs", headers=self.headers)
        if r.status_code != 202:
            raise BenchError(f"the sync did not start: {r.status_code} {r.text[:300]}")
        return int(r.json()["id"])

    async def wait_run(
        self, run_id: int, done: Callable[[dict[str, Any]], bool], limit_s: float
    ) -> dict[str, Any]:
        """Poll the run until `done(run)` (or limit_s passed); the run as last read."""
        deadline = time.monotonic() + limit_s
        run = await self.run(run_id)
        while not done(run) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            run = await self.run(run_id)
        return run

    async def onoffice_progress(self, first: int, last: int) -> tuple[int, int]:
        params = {"first": first, "last": last}
        answer = (await self.client.get(f"{self.onoffice}/_control/progress", params=params)).json()
        return int(answer["not_yes"]), int(answer["twice"])

    async def mailchimp_stats(self) -> dict[str, Any]:
        return dict((await self.client.get(f"{self.mailchimp}/_control/stats")).json())

    async def sql(self, query: str) -> list[asyncpg.Record]:
        url = database_url(self.args).replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()


async def start_running(
    infra: Infra,
    base: argparse.Namespace,
    stack: Stack,
    client: httpx.AsyncClient,
    *,
    seed_addresses: int = 0,
    records: list[dict[str, Any]] | None = None,
) -> Running:
    """A fresh database and Redis, the emulators, the API and two workers, a connected tenant."""
    args = infra.args(base)
    await fresh_database(args)
    oo_port, mc_port, api_port = infra.ports[2:5]
    seeded = ["--seed-addresses", str(seed_addresses), "--seed", str(base.seed)]
    oo = start_emulator(stack, "onoffice", oo_port, seeded if seed_addresses else [])
    mc_options = latency_options(base.mailchimp_latency_s, base.mailchimp_per_item_s)
    mc = start_emulator(stack, "mailchimp", mc_port, mc_options)
    await oo.ready(client, wait_s=300)
    await mc.ready(client)
    onoffice, mailchimp = oo.url, mc.url
    if records:
        await client.post(f"{onoffice}/_control/addresses", json={"addresses": records})
    await client.post(f"{onoffice}/_control/latency", json={"seconds": base.onoffice_latency_s})
    api = f"http://127.0.0.1:{api_port}"
    env = connector_env(args, api=api, onoffice=onoffice, provider=mailchimp)
    running = Running(stack, client, args, env, api, onoffice, mailchimp)
    start_api(running)
    for _ in range(2):
        start_worker(running)
    await wait_http(client, f"{api}/healthz", stack.get("api"))
    running.token, saved = await activate_and_connect(
        client, api, onoffice, "mailchimp", MAILCHIMP_KEY
    )
    running.list_id = str(saved["list_id"])
    return running


def start_api(running: Running) -> Proc:
    port = running.api.rsplit(":", 1)[1]
    name = "api" if not any(p.name == "api" for p in running.stack.procs) else "api-restarted"
    argv = ["-m", "app.cli", "serve", "--no-migrate", "--port", port]
    return running.stack.start(name, argv, running.env)


def start_worker(running: Running) -> Proc:
    name = f"worker{len(running.workers()) + 1}"
    return running.stack.start(name, ["-m", "app.cli", "worker"], running.env)


def busiest(procs: list[Proc]) -> Proc:
    """The process that used the most CPU over the last half second."""
    before = {p.name: sum(p.ps.cpu_times()[:2]) for p in procs if p.alive()}
    time.sleep(0.5)
    used = {
        p.name: sum(p.ps.cpu_times()[:2]) - before[p.name]
        for p in procs
        if p.alive() and p.name in before
    }
    if not used:
        raise BenchError("no worker is running")
    return next(p for p in procs if p.name == max(used, key=lambda n: used[n]))


async def inject(kind: str, infra: Infra, running: Running) -> float:
    """Carry out the fault; the monotonic time the dependency (or process) was back."""
    if kind == "redis":
        await asyncio.to_thread(infra.redis.kill)
        await asyncio.sleep(FAULT_DOWN_S)
        await asyncio.to_thread(infra.redis.start)
    elif kind == "postgres":
        await asyncio.to_thread(infra.pg.stop)
        await asyncio.sleep(FAULT_DOWN_S)
        await asyncio.to_thread(infra.pg.start)
    elif kind == "worker":
        victim = await asyncio.to_thread(busiest, running.workers())
        victim.popen.kill()  # kill -9
        victim.popen.wait(timeout=10)
        running.killed.append(victim)
        start_worker(running)  # what the supervisor does
    elif kind == "api":
        api = next(p for p in running.stack.procs if p.name == "api")
        api.popen.kill()
        api.popen.wait(timeout=10)
        running.killed.append(api)
        proc = start_api(running)  # the supervisor
        await wait_http(running.client, f"{running.api}/healthz", proc)
    else:
        raise BenchError(f"unknown fault {kind}")
    return time.monotonic()


def cpu_seconds(procs: list[Proc]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += sum(p.ps.cpu_times()[:2])
    return total


def log_dir_for(base: Path, name: str) -> Path:
    path = base / name
    path.mkdir(parents=True, exist_ok=True)
    return path
