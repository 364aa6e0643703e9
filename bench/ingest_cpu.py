"""CPU per webhook delivery inside the API process, without HTTP or a client: the ASGI app is
called directly (its lifespan run, PostgreSQL and Redis as in production) with Mailchimp
unsubscribe forms, `--concurrency` at a time, and the process CPU time is divided by the
deliveries. It does not depend on the machine's load the way a wall-clock figure does.

    .venv/bin/python -m bench.ingest_cpu --events 2000 --concurrency 50 --profile

`--profile` prints the cProfile functions with the most cumulative time as well.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from app.config import Environment, Settings
from app.crypto import generate_key, hash_token
from app.db.engine import create_engine, create_sessionmaker
from app.db.models import Connection, Tenant
from bench.stack import (
    database_url,
    fresh_database,
    machine,
    parse_bench_args,
    redis_url,
    release_database,
)

TOKEN = "bench-ingest-token"


async def seed_connection(url: str) -> None:
    """A tenant with a Mailchimp connection whose webhook URL token is TOKEN (stored hashed)."""
    engine = create_engine(url, pool_size=1)
    async with create_sessionmaker(engine)() as session, session.begin():
        tenant = Tenant(customer_web_id="cpu-1", customer_name="CPU")
        session.add(tenant)
        await session.flush()
        session.add(
            Connection(
                tenant_id=tenant.id,
                provider="mailchimp",
                api_key_encrypted=b"x",
                webhook_token=hash_token(TOKEN),
                list_id="l1",
            )
        )
    await engine.dispose()


def form(n: int) -> bytes:
    return urlencode(
        {
            "type": "unsubscribe",
            "fired_at": "2026-01-01 00:00:00",
            "data[action]": "unsub",
            "data[reason]": "manual",
            "data[email]": f"person{n}@example.de",
            "data[list_id]": "l1",
            "data[id]": f"id{n}",
        }
    ).encode()


async def deliver(app: Any, body: bytes) -> int:
    """One POST through the ASGI interface; the response status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/webhooks/mailchimp/{TOKEN}",
        "raw_path": f"/webhooks/mailchimp/{TOKEN}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(args: argparse.Namespace) -> None:
    from app.main import create_app

    await fresh_database(args)
    url = database_url(args)
    await seed_connection(url)
    settings = Settings(
        ENV=Environment.production,
        DATABASE_URL=url,
        REDIS_URL=redis_url(args),
        ONOFFICE_PROVIDER_SECRET=SecretStr("cpu-secret"),
        ENCRYPTION_KEY=SecretStr(generate_key()),
        PUBLIC_BASE_URL="http://127.0.0.1:8000",
        LOG_LEVEL=args.log_level,
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            for n in range(20):  # warm-up: pool connections, caches
                await deliver(app, form(10_000_000 + n))
            profiler = cProfile.Profile() if args.profile else None
            queue = list(reversed(range(args.events)))
            bodies = {n: form(n) for n in queue}
            statuses: dict[int, int] = {}
            latencies: list[float] = []
            began = time.perf_counter()

            async def sender() -> None:
                while queue:
                    n = queue.pop()
                    if args.rate:
                        await asyncio.sleep(max(0.0, began + n / args.rate - time.perf_counter()))
                    start = time.perf_counter()
                    code = await deliver(app, bodies[n])
                    latencies.append((time.perf_counter() - start) * 1000)
                    statuses[code] = statuses.get(code, 0) + 1

            cpu, wall = time.process_time(), time.perf_counter()
            began = wall
            if profiler:
                profiler.enable()
            await asyncio.gather(*(sender() for _ in range(args.concurrency)))
            if profiler:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await release_database(args)
    print(f"machine: {machine()}")
    print(
        f"{args.events} deliveries, {args.concurrency} at a time: statuses {statuses}; "
        f"CPU {cpu * 1000 / args.events:.2f} ms per delivery (process time), "
        f"wall {wall:.2f} s = {args.events / wall:.0f} deliveries/s in-process"
        + (f" (paced at {args.rate:g}/s)" if args.rate else "")
    )
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    print(f"latency in-process p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms")
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats(args.sort).print_stats(args.top)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.ingest_cpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--rate", type=float, default=0.0, help="pace at this many per second")
    p.add_argument("--profile", action="store_true", help="print a cProfile summary")
    p.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    p.add_argument("--top", type=int, default=40)
    args = parse_bench_args(p, argv, "connector_bench_ingest")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
