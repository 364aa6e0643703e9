"""Tenant fairness benchmark (issue 21): tenant A floods its webhook address and the API while
tenant B sends its ordinary traffic; B's acknowledgement latency (p50/p99) is measured before
and during the flood, against the 200 ms target. A timed test is not allowed in the suite
(the machine's load decides timings), so this benchmark prints the figures instead.

The stack is the one of the other benchmarks, every component its own process: the onOffice
and Brevo emulators, the connector's API (`app.cli serve`, production mode) and `--workers` arq
workers on PostgreSQL and Redis. Both tenants are activated through the signed marketplace
flow and connected to Brevo (two accounts). Each phase lasts `--phase-s`:

- quiet: B alone: one webhook delivery (a Brevo `unsubscribed` event) every
  `--probe-interval-s` and one API call (`GET /api/v1/session`) every second interval;
- flood: the same probes of B while A runs `--flood-senders` closed-loop webhook senders (one
  event per delivery, each a new email) and `--api-senders` closed-loop API senders
  (`GET /api/v1/status`, `POST /api/v1/changes/poll`, `GET /api/v1/session` in turn).

B's latencies are measured from sending to the complete answer (HTTP/1.1 keep-alive; the
webhook senders use `bench/http1.py`, cheap on the CPU the server shares). A's answers are
counted by status: its API calls beyond `API_RATE_PER_TENANT` get 429, and its webhook
deliveries beyond `WEBHOOK_RATE_PER_CONNECTION` would.

    .venv/bin/python -m bench.fairness --phase-s 20 --flood-senders 40 --api-senders 20
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.http1 import Http1Connection, Http1Error
from bench.report import run_benchmark, table
from bench.stack import (
    Stack,
    Tenant,
    activate_and_connect,
    add_worker_args,
    launch_connector,
    note,
    on_fresh_stack,
    parse_bench_args,
    start_emulator,
)

TARGET_MS = 200.0
JSON_TYPE = "application/json"


class Hook:
    def __init__(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    def connection(self) -> Http1Connection:
        return Http1Connection(self.url, headers={"Authorization": f"Bearer {self.secret}"})


def delivery(email: str) -> bytes:
    event = {"event": "unsubscribed", "email": email, "ts_event": int(time.time())}
    return json.dumps(event).encode()


def quantiles(values: list[float]) -> dict[str, float | None]:
    if len(values) < 2:
        one = round(values[0], 1) if values else None
        return {"p50_ms": one, "p99_ms": one, "max_ms": one}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(max(values), 1),
    }


async def probes(
    args: argparse.Namespace, api: str, hook: Hook, session: str, tag: str
) -> dict[str, Any]:
    """B's traffic for one phase: its webhook and API latencies (ms) and answers."""
    hook_ms: list[float] = []
    api_ms: list[float] = []
    codes: Counter[str] = Counter()
    conn = hook.connection()
    deadline = time.monotonic() + args.phase_s
    headers = {"Authorization": f"Bearer {session}"}

    async def webhooks() -> None:
        for n in itertools.count():
            if time.monotonic() >= deadline:
                return
            body = delivery(f"b-{tag}-{n}@example.de")
            started = time.perf_counter()
            try:
                status, _ = await conn.post(body, JSON_TYPE)
            except (OSError, Http1Error, TimeoutError) as exc:
                codes[f"hook {type(exc).__name__}"] += 1
                continue
            hook_ms.append((time.perf_counter() - started) * 1000)
            codes[f"hook {status}"] += 1
            await asyncio.sleep(args.probe_interval_s)

    async def api_calls(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = await client.get(f"{api}/api/v1/session", headers=headers)
            api_ms.append((time.perf_counter() - started) * 1000)
            codes[f"api {response.status_code}"] += 1
            await asyncio.sleep(args.probe_interval_s * 2)

    async with httpx.AsyncClient(timeout=60) as client:
        try:
            await asyncio.gather(webhooks(), api_calls(client))
        finally:
            await conn.aclose()
    return {"webhook": quantiles(hook_ms), "api": quantiles(api_ms), "answers": dict(codes)}


async def flood(
    args: argparse.Namespace, api: str, hook: Hook, session: str, stop: asyncio.Event
) -> Counter[str]:
    """A's flood until `stop`: closed-loop webhook and API senders; answers by status."""
    codes: Counter[str] = Counter()
    numbers = itertools.count()
    headers = {"Authorization": f"Bearer {session}"}

    async def webhook_sender() -> None:
        conn = hook.connection()
        try:
            while not stop.is_set():
                try:
                    status, _ = await conn.post(
                        delivery(f"a-{next(numbers)}@example.de"), JSON_TYPE
                    )
                    codes[f"hook {status}"] += 1
                except (OSError, Http1Error, TimeoutError) as exc:
                    codes[f"hook {type(exc).__name__}"] += 1
        finally:
            await conn.aclose()

    async def api_sender(client: httpx.AsyncClient, k: int) -> None:
        calls = [
            ("GET", "/api/v1/status"),
            ("POST", "/api/v1/changes/poll"),
            ("GET", "/api/v1/session"),
        ]
        for method, path in itertools.cycle(calls[k % 3 :] + calls[: k % 3]):
            if stop.is_set():
                return
            try:
                response = await client.request(method, f"{api}{path}", headers=headers)
                codes[f"api {response.status_code}"] += 1
            except httpx.HTTPError as exc:
                codes[f"api {type(exc).__name__}"] += 1

    limits = httpx.Limits(max_connections=args.api_senders + 5)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        await asyncio.gather(
            *(webhook_sender() for _ in range(args.flood_senders)),
            *(api_sender(client, k) for k in range(args.api_senders)),
        )
    return codes


async def amain(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    return await on_fresh_stack(args, log_dir, lambda stack, client: _amain(args, stack, client))


async def _amain(
    args: argparse.Namespace, stack: Stack, client: httpx.AsyncClient
) -> dict[str, Any]:
    note("starting the emulators and the connector")
    oo = start_emulator(stack, "onoffice")
    br = start_emulator(stack, "brevo")
    await br.ready(client)
    await oo.ready(client)
    onoffice, brevo = oo.url, br.url
    api = (await launch_connector(stack, client, args, onoffice, brevo)).url

    note("activating and connecting tenants A and B (Brevo)")
    sessions: dict[str, str] = {}
    hooks: dict[str, Hook] = {}
    for n, name in ((1, "A"), (2, "B")):
        key = f"brevo-fairness-{name.lower()}"
        await client.post(f"{brevo}/_control/accounts", json={"api_key": key})
        tenant = Tenant.numbered(n)
        sessions[name], _ = await activate_and_connect(client, api, onoffice, "brevo", key, tenant)
        account = (await client.get(f"{brevo}/_control/state")).json()["accounts"][key]
        (hook,) = account["webhooks"]
        hooks[name] = Hook(hook["url"], hook["auth"]["token"])

    note(f"quiet phase: tenant B alone for {args.phase_s:g} s")
    quiet = await probes(args, api, hooks["B"], sessions["B"], "quiet")
    note(
        f"flood phase: tenant A floods ({args.flood_senders} webhook and "
        f"{args.api_senders} API senders)"
    )
    stop = asyncio.Event()
    flooding = asyncio.create_task(flood(args, api, hooks["A"], sessions["A"], stop))
    await asyncio.sleep(args.warmup_s)
    flood_started = time.monotonic()
    during = await probes(args, api, hooks["B"], sessions["B"], "flood")
    stop.set()
    a_codes = await flooding
    flood_s = time.monotonic() - flood_started + args.warmup_s
    return {"quiet": quiet, "during": during, "a_answers": dict(a_codes), "flood_s": flood_s}


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    quiet, during = result["quiet"], result["during"]
    rows = []
    for kind in ("webhook", "api"):
        for q in ("p50_ms", "p99_ms", "max_ms"):
            rows.append((f"B {kind} ack {q[:-3]} (ms)", f"{quiet[kind][q]}  |  {during[kind][q]}"))
    rows.append(("B answers", f"{quiet['answers']}  |  {during['answers']}"))
    print()
    print(table(rows, "Tenant B: alone  |  while tenant A floods"))
    a = result["a_answers"]
    hooks_a = sum(v for k, v in a.items() if k.startswith("hook "))
    rows = [
        ("A's answers", json.dumps(a, sort_keys=True)),
        ("A's webhook deliveries per second", f"{hooks_a / result['flood_s']:.0f}"),
    ]
    p99 = during["webhook"]["p99_ms"]
    api_p99 = during["api"]["p99_ms"]
    refused_b = sum(v for k, v in during["answers"].items() if not k.endswith(" 200"))
    met = p99 is not None and api_p99 is not None and max(p99, api_p99) <= TARGET_MS
    rows.append((f"B's p99 ack ≤ {TARGET_MS:.0f} ms during the flood", "yes" if met else "NO"))
    rows.append(("B's requests refused or failed during the flood", str(refused_b)))
    print()
    print(table(rows, "Verdict"))
    print()
    print(
        json.dumps(
            {
                "benchmark": "fairness",
                "phase_s": args.phase_s,
                "flood_senders": args.flood_senders,
                "api_senders": args.api_senders,
                "b_alone": quiet,
                "b_during_flood": during,
                "a_answers": a,
                "b_p99_within_target": met,
            }
        )
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.fairness", description=__doc__.split("\n\n")[0])
    p.add_argument("--phase-s", type=float, default=20.0, help="length of each phase")
    p.add_argument("--warmup-s", type=float, default=2.0, help="flood before B's probes start")
    p.add_argument("--probe-interval-s", type=float, default=0.05, help="B's webhook pacing")
    p.add_argument("--flood-senders", type=int, default=40, help="A's webhook senders")
    p.add_argument("--api-senders", type=int, default=20, help="A's API senders")
    add_worker_args(p, workers=1)
    return parse_bench_args(p, argv, "connector_bench_fairness")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [
        ("tenants", "A floods, B sends its ordinary traffic (both Brevo)"),
        ("phases", f"{args.phase_s:g} s alone, {args.phase_s:g} s during A's flood"),
        ("A's flood", f"{args.flood_senders} webhook + {args.api_senders} API senders"),
        ("target", f"B's p99 ack latency ≤ {TARGET_MS:.0f} ms"),
    ]
    return run_benchmark(
        args, "Tenant fairness benchmark", rows, "connector-bench-fair-", amain, report
    )


if __name__ == "__main__":
    sys.exit(main())
