"""The cost of the periodic reconciliation for many idle connections (issue 18, item 2):
provider requests and worker CPU per hour, against the bound "at most two provider requests per
connection and reconciliation when nothing changed" (Mailchimp: the members changed since the
watermark, then the archived ones; Brevo: one `GET /contacts?modifiedSince`).

The emulators run as their own processes (their CPU is not counted); this process is the
worker: it runs the reconciliation's code with production settings (PostgreSQL, Redis, the
shared Redis limiter and pacer), `--concurrency` reconciliations at a time like a worker's
WORKER_CONCURRENCY slots. Each connection has its own key (Mailchimp key / Brevo account), so
no key's limit serialises them. Per hour at PROVIDER_RECONCILE_INTERVAL_S = I:
3600 / I reconciliation rounds, and 60 schedule ticks (the per-minute sweep, which enqueues the
due connections: measured once with every connection due and once with none due).

    .venv/bin/python -m bench.reconcile --connections 1000 --providers mailchimp,brevo
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from app.config import Environment, Settings
from app.crypto import SecretBox, generate_key
from app.db.engine import create_engine, create_sessionmaker
from app.db.models import Connection, Tenant
from app.reconcile import service
from app.resources import create_resources
from bench.stack import (
    Stack,
    code_version,
    database_url,
    fresh_database,
    machine,
    note,
    parse_bench_args,
    redis_url,
    release_database,
    start_emulator,
)

CALLS_PER_IDLE = {"mailchimp": 2, "brevo": 1}  # the bound per connection and reconciliation
MAILCHIMP_LIST = "benchlist01"


def keys(provider: str, n: int) -> list[str]:
    if provider == "mailchimp":
        return [f"{i:032x}-us1" for i in range(1, n + 1)]
    return [f"xkeysib-bench-{i}" for i in range(1, n + 1)]


async def seed_emulator(client: httpx.AsyncClient, provider: str, url: str, n: int) -> None:
    if provider == "mailchimp":
        await client.post(f"{url}/_control/lists", json={"name": "onoffice", "id": MAILCHIMP_LIST})
        for key in keys(provider, n):
            await client.post(f"{url}/_control/api-keys", json={"api_key": key})
    else:
        for key in keys(provider, n):
            await client.post(f"{url}/_control/accounts", json={"api_key": key})


async def requests_made(client: httpx.AsyncClient, provider: str, url: str) -> int:
    if provider == "mailchimp":
        return int((await client.get(f"{url}/_control/stats")).json()["total_requests"])
    counts = (await client.get(f"{url}/_control/state")).json()["request_counts"]
    return sum(int(v) for v in counts.values())


async def seed_connections(settings: Settings, provider: str, n: int) -> list[int]:
    box = SecretBox.from_settings(settings)
    engine = create_engine(settings.DATABASE_URL, pool_size=1)
    ids = []
    async with create_sessionmaker(engine)() as session, session.begin():
        for i, key in enumerate(keys(provider, n), start=1):
            tenant = Tenant(customer_web_id=f"{provider}-{i}", customer_name=f"T{i}")
            session.add(tenant)
            await session.flush()
            connection = Connection(
                tenant_id=tenant.id,
                provider=provider,
                api_key_encrypted=box.encrypt(key),
                webhook_token=f"{provider}-{i}",
                list_id=MAILCHIMP_LIST if provider == "mailchimp" else "7",
                ledger_key=f"{provider}:{i}:list",
            )
            session.add(connection)
            await session.flush()
            ids.append(connection.id)
    await engine.dispose()
    return ids


async def measure(args: argparse.Namespace, provider: str, stack: Stack) -> dict[str, Any]:
    emulator = start_emulator(stack, provider)
    url = emulator.url
    await fresh_database(args)
    settings = Settings(
        ENV=Environment.production,
        DATABASE_URL=database_url(args),
        REDIS_URL=redis_url(args),
        ONOFFICE_PROVIDER_SECRET=SecretStr("bench-secret"),
        ENCRYPTION_KEY=SecretStr(generate_key()),
        MAILCHIMP_API_URL=f"{url}/3.0",
        BREVO_API_URL=f"{url}/v3",
        LOG_LEVEL=args.log_level,
    )
    async with httpx.AsyncClient(timeout=30) as client:
        await emulator.ready(client)
        note(f"{provider}: seeding {args.connections} keys and connections")
        await seed_emulator(client, provider, url, args.connections)
        ids = await seed_connections(settings, provider, args.connections)
        resources = await create_resources(settings)
        slots = asyncio.Semaphore(args.concurrency)

        async def one(connection_id: int) -> service.Outcome | None:
            async with slots:
                return await service.reconcile(resources, connection_id)

        async def round_() -> tuple[float, float, int, list[service.Outcome | None]]:
            before = await requests_made(client, provider, url)
            cpu, wall = time.process_time(), time.perf_counter()
            outcomes = await asyncio.gather(*(one(i) for i in ids))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            return cpu, wall, await requests_made(client, provider, url) - before, outcomes

        try:
            tick_cpu = time.process_time()
            due = await service.schedule(resources)  # every connection due: 1,000 enqueues
            tick_all = time.process_time() - tick_cpu
            await round_()  # warm-up: the first read of each connection, client caches
            tick_cpu = time.process_time()
            none_due = await service.schedule(resources)  # right after a round: nothing due
            tick_none = time.process_time() - tick_cpu
            measured = [await round_() for _ in range(args.rounds)]
        finally:
            await resources.aclose()
            await release_database(args)
    outcomes = [o for m in measured for o in m[3]]
    results = {o.result if o else "skipped" for o in outcomes}
    events = sum(o.events for o in outcomes if o)
    cpu_round = sum(m[0] for m in measured) / len(measured)
    calls_round = sum(m[2] for m in measured) / len(measured)
    per_hour = 3600 / args.interval
    cpu_hour = per_hour * (cpu_round + tick_all) + (60 - per_hour) * tick_none
    return {
        "provider": provider,
        "connections": args.connections,
        "interval_s": args.interval,
        "rounds_measured": args.rounds,
        "results": sorted(results),
        "events": events,
        "calls_per_round": calls_round,
        "calls_per_hour": calls_round * per_hour,
        "calls_bound_per_hour": CALLS_PER_IDLE[provider] * args.connections * per_hour,
        "round_wall_s": sum(m[1] for m in measured) / len(measured),
        "round_cpu_s": cpu_round,
        "schedule_tick_cpu_s": {"all_due": tick_all, "none_due": tick_none},
        "scheduled": {"all_due": due, "none_due": none_due},
        "worker_cpu_s_per_hour": cpu_hour,
        "worker_core_share": cpu_hour / 3600,
    }


def report(rows: list[dict[str, Any]]) -> None:
    print(f"machine: {machine()}  code: {code_version()}")
    print(
        "| provider | connections | calls per round (bound) | calls per hour (bound) "
        "| round wall / CPU | schedule tick CPU (all / none due) | worker CPU per hour |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        bound_round = r["calls_bound_per_hour"] / (3600 / r["interval_s"])
        ticks = r["schedule_tick_cpu_s"]
        print(
            f"| {r['provider']} | {r['connections']:,} | {r['calls_per_round']:,.0f} "
            f"({bound_round:,.0f}) | {r['calls_per_hour']:,.0f} ({r['calls_bound_per_hour']:,.0f})"
            f" | {r['round_wall_s']:.1f} s / {r['round_cpu_s']:.1f} s | {ticks['all_due']:.2f} s "
            f"/ {ticks['none_due']:.3f} s | {r['worker_cpu_s_per_hour']:.0f} s "
            f"({100 * r['worker_core_share']:.2f} % of a core) |"
        )
    print(json.dumps({"bench": "reconcile", "rows": rows}))


async def amain(args: argparse.Namespace) -> list[dict[str, Any]]:
    stack = Stack(Path(tempfile.mkdtemp(prefix="bench-reconcile-")))
    rows = []
    try:
        for provider in args.providers.split(","):
            rows.append(await measure(args, provider.strip(), stack))
    finally:
        stack.stop()
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--providers", default="mailchimp,brevo")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds after a warm-up")
    p.add_argument("--concurrency", type=int, default=10, help="reconciliations at a time")
    p.add_argument(
        "--interval", type=int, default=900, help="PROVIDER_RECONCILE_INTERVAL_S of the figure"
    )
    return parse_bench_args(p, argv, "connector_bench_reconcile")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report(asyncio.run(amain(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
