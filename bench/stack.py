"""The process stack of a benchmark: child processes on free ports, the benchmark's own
PostgreSQL database and Redis db, the emulators, the connector's environment and processes, and
the signed marketplace activation of a tenant over HTTP. Every benchmark starts up through this
module: `on_fresh_stack` (a fresh database and Redis db, a `Stack`, the teardown),
`start_emulator`, `start_connector`/`launch_connector`, `activate_and_connect`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import psutil
from redis.asyncio import Redis

from app.crypto import generate_key
from app.db.migrate import migrate
from devkit import kit
from devkit.kit import free_port

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_SECRET = "bench-provider-secret"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us1"  # emulators.mailchimp.DEFAULT_API_KEY
BREVO_KEY = "test-key-de"  # seeded by `python -m emulators.brevo`
EMULATORS = ("onoffice", "mailchimp", "brevo")


class BenchError(RuntimeError):
    pass


def note(text: str) -> None:
    """Progress goes to stderr; the figures go to stdout."""
    print(text, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------------------
# Processes
# -------------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    ps: psutil.Process

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class Stack:
    """Every child process of one benchmark run; `stop()` ends exactly these, by pid."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Proc:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env=dict(env or os.environ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
            )
        proc = Proc(name, popen, log, psutil.Process(popen.pid))
        self.procs.append(proc)
        return proc

    def get(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.alive():
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.procs):
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.popen.kill()
                proc.popen.wait(timeout=5)
        self.procs.clear()


async def wait_http(client: httpx.AsyncClient, url: str, proc: Proc, wait_s: float = 90) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        if not proc.alive():
            raise BenchError(f"{proc.name} exited during start-up:\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url, timeout=5)).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise BenchError(f"{proc.name} did not answer {url} within {wait_s:.0f} s")
        await asyncio.sleep(0.2)


# -------------------------------------------------------------------------------------------------
# Database and Redis
# -------------------------------------------------------------------------------------------------


def add_infra_args(p: argparse.ArgumentParser, db_name: str) -> None:
    p.add_argument("--db-name", default=db_name)
    p.add_argument(
        "--pg-admin-dsn",
        default=os.environ.get(
            "BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument("--redis-base", default="redis://127.0.0.1:6379")
    p.add_argument("--redis-db", type=int, default=5)
    p.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector processes")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database afterwards")
    p.add_argument("--keep-logs", action="store_true", help="keep the process logs")


def check_infra_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", args.db_name):
        p.error("--db-name must be a plain PostgreSQL identifier")
    if args.db_name in ("postgres", "template0", "template1"):
        p.error("--db-name must not be a system database")


def parse_bench_args(
    p: argparse.ArgumentParser, argv: list[str] | None, db_name: str
) -> argparse.Namespace:
    """`p` with the database, Redis and log options (`--db-name` defaulting to `db_name`),
    parsed from `argv` and checked."""
    add_infra_args(p, db_name)
    args = p.parse_args(argv)
    check_infra_args(p, args)
    return args


def add_worker_args(p: argparse.ArgumentParser, workers: int = 2) -> None:
    p.add_argument("--workers", type=int, default=workers, help="arq worker processes")
    p.add_argument("--worker-concurrency", type=int, default=0, help="WORKER_CONCURRENCY")


def bench_ports(args: argparse.Namespace, count: int) -> list[int]:
    """`count` ports from `--port-base` (where the script has it and it is set), else free
    ones."""
    base = int(getattr(args, "port_base", 0) or 0)
    return [base + i for i in range(count)] if base else [free_port() for _ in range(count)]


def admin_dsn(args: argparse.Namespace) -> str:
    return str(args.pg_admin_dsn)


def database_url(args: argparse.Namespace) -> str:
    base = admin_dsn(args).rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{args.db_name}"


async def recreate_database(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(admin_dsn(args))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{args.db_name}"')
    finally:
        await conn.close()


async def drop_database(args: argparse.Namespace) -> None:
    conn = await asyncpg.connect(admin_dsn(args))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    finally:
        await conn.close()


def redis_url(args: argparse.Namespace) -> str:
    return f"{args.redis_base.rstrip('/')}/{args.redis_db}"


async def flush_redis(url: str) -> None:
    redis = Redis.from_url(url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()


async def fresh_database(args: argparse.Namespace) -> None:
    """The benchmark's database dropped, created again and migrated; its Redis db flushed."""
    await recreate_database(args)
    await asyncio.to_thread(migrate, database_url(args))
    await flush_redis(redis_url(args))


async def release_database(args: argparse.Namespace) -> None:
    """After a run: the Redis db flushed (as far as it can be), the database dropped unless
    --keep-db."""
    with contextlib.suppress(Exception):
        await flush_redis(redis_url(args))
    if not args.keep_db:
        await drop_database(args)


async def on_fresh_stack(
    args: argparse.Namespace,
    log_dir: Path,
    body: Callable[[Stack, httpx.AsyncClient], Awaitable[T]],
    *,
    limits: httpx.Limits | None = None,
) -> T:
    """`body` on a freshly created and migrated database and a flushed Redis db, with a new
    `Stack` and an HTTP client (`limits`: its pool, else httpx's default); its processes
    stopped and the database dropped (unless --keep-db) afterwards."""
    await fresh_database(args)
    stack = Stack(log_dir)
    try:
        client = (
            httpx.AsyncClient(timeout=120, limits=limits)
            if limits
            else httpx.AsyncClient(timeout=120)
        )
        async with client:
            return await body(stack, client)
    finally:
        stack.stop()
        await release_database(args)


# -------------------------------------------------------------------------------------------------
# Emulators
# -------------------------------------------------------------------------------------------------

# What answers once an emulator has started (the onOffice one after seeding its book).
READY_PATHS = {
    "onoffice": "/_control/state?addresses=false",
    "mailchimp": "/_control/stats",
    "brevo": "/_control/state",
}


@dataclass
class Emulator:
    url: str
    proc: Proc
    ready_path: str

    async def ready(self, client: httpx.AsyncClient, wait_s: float = 90) -> None:
        await wait_http(client, f"{self.url}{self.ready_path}", self.proc, wait_s)


def start_emulator(
    stack: Stack, kind: str, port: int = 0, options: Sequence[str] = (), name: str = ""
) -> Emulator:
    """`python -m emulators.<kind>` on `port` (0: a free one) with the command-line `options`,
    as process `name` (default: `kind`); the Mailchimp one accepts MAILCHIMP_KEY (its default
    key). Not waited for: `await emulator.ready(client)`."""
    port = port or free_port()
    argv = ["-m", f"emulators.{kind}", "--port", str(port), *options]
    if kind == "mailchimp":
        argv += ["--api-key", MAILCHIMP_KEY]
    return Emulator(f"http://127.0.0.1:{port}", stack.start(name or kind, argv), READY_PATHS[kind])


def latency_options(seconds: float, per_item_s: float = 0.0) -> list[str]:
    """A provider emulator's latency per request and (Mailchimp) per member in a body or page."""
    options = ["--latency", str(seconds)]
    if per_item_s:
        options += ["--latency-per-item", str(per_item_s)]
    return options


# -------------------------------------------------------------------------------------------------
# The connector
# -------------------------------------------------------------------------------------------------

# Production serves /metrics only behind a token.
BENCH_METRICS_TOKEN = "bench-metrics"


def connector_env(
    args: argparse.Namespace, *, api: str, onoffice: str, provider: str, **extra: str
) -> dict[str, str]:
    """Environment of the connector's API and worker processes (production mode)."""
    env = dict(os.environ)
    env.update(
        {
            "ENV": "production",
            "DATABASE_URL": database_url(args),
            "REDIS_URL": redis_url(args),
            "PUBLIC_BASE_URL": api,
            "ONOFFICE_API_URL": f"{onoffice}/api/stable/api.php",
            "MAILCHIMP_API_URL": f"{provider}/3.0",
            "BREVO_API_URL": f"{provider}/v3",
            "ONOFFICE_PROVIDER_SECRET": PROVIDER_SECRET,
            "ENCRYPTION_KEY": generate_key(),
            "METRICS_TOKEN": BENCH_METRICS_TOKEN,
            "LOG_LEVEL": args.log_level,
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


def start_connector(
    stack: Stack,
    env: Mapping[str, str],
    api_port: int,
    workers: int,
    queues: Sequence[str] = (),
) -> tuple[Proc, list[Proc]]:
    """The API and `workers` worker processes serving every queue (`worker1`, ...), or with
    `queues`, `workers` processes per queue serving only it (`interactive1`, `bulk1`, ...)."""
    api = stack.start(
        "api", ["-m", "app.cli", "serve", "--no-migrate", "--port", str(api_port)], env
    )
    argv = ["-m", "app.cli", "worker"]
    if not queues:
        return api, [stack.start(f"worker{i + 1}", argv, env) for i in range(workers)]
    procs = [
        stack.start(f"{queue}{i + 1}", [*argv, "--queues", queue], env)
        for i in range(workers)
        for queue in queues
    ]
    return api, procs


@dataclass
class Connector:
    url: str
    env: dict[str, str]
    api: Proc
    workers: list[Proc]


async def launch_connector(
    stack: Stack,
    client: httpx.AsyncClient,
    args: argparse.Namespace,
    onoffice: str,
    provider: str,
    *,
    port: int = 0,
    queues: Sequence[str] = (),
    **extra: str,
) -> Connector:
    """The connector's API on `port` (0: a free one) and --workers workers (`start_connector`)
    against the emulators at `onoffice` and `provider`, the environment `extra` on top
    (WORKER_CONCURRENCY from --worker-concurrency where it is set); answers once the API's
    /healthz does."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    if getattr(args, "worker_concurrency", 0):
        extra = extra | {"WORKER_CONCURRENCY": str(args.worker_concurrency)}
    env = connector_env(args, api=url, onoffice=onoffice, provider=provider, **extra)
    api, procs = start_connector(stack, env, port, args.workers, queues)
    await wait_http(client, f"{url}/healthz", api)
    return Connector(url, env, api, procs)


# -------------------------------------------------------------------------------------------------
# A tenant over HTTP: marketplace activation, session, connection
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenant:
    web_id: str = "B1"
    token: str = "t" * 32
    secret: str = "s" * 64
    claim: str = "bench-claim"
    address_range: tuple[int, int] | None = None  # ids its onOffice reads see (emulator)

    @classmethod
    def numbered(cls, n: int, address_range: tuple[int, int] | None = None) -> Tenant:
        return cls(
            web_id=f"B{n}",
            token=f"{n:032d}",
            secret=f"{n:064d}",
            claim=f"bench-claim-{n}",
            address_range=address_range,
        )


def signed_query(base_url: str, path: str, params: Mapping[str, str]) -> dict[str, str]:
    return kit.signed_params(base_url + path, params, PROVIDER_SECRET)


async def activate_and_login(
    client: httpx.AsyncClient, api: str, onoffice: str, tenant: Tenant | None = None
) -> str:
    """Marketplace activation of `tenant` (registered in the onOffice emulator first) and a
    session token for it."""
    t = tenant or Tenant()
    response = await kit.activate(
        client,
        api=api,
        onoffice=onoffice,
        web_id=t.web_id,
        token=t.token,
        secret=t.secret,
        claim=t.claim,
        provider_secret=PROVIDER_SECRET,
        address_range=t.address_range or None,
    )
    if response.text != "active":
        raise BenchError(f"activation failed: {response.status_code} {response.text[:500]}")
    response = await kit.open_session(
        client, api=api, web_id=t.web_id, claim=t.claim, provider_secret=PROVIDER_SECRET
    )
    if not response.is_success:
        raise BenchError(f"session failed: {response.status_code} {response.text[:500]}")
    return str(response.json()["token"])


async def connect(
    client: httpx.AsyncClient, api: str, token: str, provider: str, api_key: str
) -> dict[str, Any]:
    saved = await client.put(
        f"{api}/api/v1/connection",
        headers={"Authorization": f"Bearer {token}"},
        json={"provider": provider, "api_key": api_key},
    )
    if saved.status_code != 200:
        raise BenchError(f"saving the connection failed: {saved.status_code} {saved.text[:500]}")
    return dict(saved.json())


async def activate_and_connect(
    client: httpx.AsyncClient,
    api: str,
    onoffice: str,
    provider: str,
    api_key: str,
    tenant: Tenant | None = None,
) -> tuple[str, dict[str, Any]]:
    """`activate_and_login`, then the connection to `provider` saved: (session token, the
    saved connection)."""
    token = await activate_and_login(client, api, onoffice, tenant)
    return token, await connect(client, api, token, provider, api_key)


def code_version() -> str:
    """The commit measured, and whether the connector's code differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "providers", "onoffice_client",
             "migrations", "emulators"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}" + (" + uncommitted changes" if dirty else "")


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    python = sys.version.split()[0]
    return f"{psutil.cpu_count()} CPUs, load average {load} at start, Python {python}"


def raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
