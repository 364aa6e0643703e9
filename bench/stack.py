"""The process stack of a benchmark: child processes on free ports, the benchmark's own
PostgreSQL database and Redis db, the connector's environment, and the signed marketplace
activation of a tenant over HTTP. Shared by bench/full_sync.py, bench/webhooks.py and
bench/tenants.py."""

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from redis.asyncio import Redis

from app.crypto import generate_key
from devkit import kit

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
    stack: Stack, env: Mapping[str, str], api_port: int, workers: int
) -> tuple[Proc, list[Proc]]:
    api = stack.start(
        "api", ["-m", "app.cli", "serve", "--no-migrate", "--port", str(api_port)], env
    )
    argv = ["-m", "app.cli", "worker"]
    procs = [stack.start(f"worker{i + 1}", argv, env) for i in range(workers)]
    return api, procs


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
