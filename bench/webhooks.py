"""Webhook benchmark: a burst of Mailchimp unsubscribe webhooks over HTTP to the connector's API
(PostgreSQL, real arq workers), then the time until onOffice shows every one of them applied.

The stack is the one of bench/full_sync.py (every component its own process). The onOffice
emulator is seeded with `events x phases` addresses, each with its own email and newsletter =
Yes, and a full sync puts them all into the Mailchimp audience. Each phase then sets the onOffice
latency (`zero`, `realistic` = 200 ms a request), sends `--events` distinct unsubscribes with
`--senders` concurrent senders, and polls the onOffice emulator until every target address
has newsletter = No, or `--apply-timeout` passes. It reports acknowledgements per second, the
ack latency p50/p99, the apply time and rate, and checks the emulator state: every target set
to No (nothing lost), and at most one activity per address (nothing applied twice).

    .venv/bin/python -m bench.webhooks --events 20000 --latencies zero,realistic

Every webhook is confirmed against the member's state at Mailchimp before it is applied
(app/contacts/confirm.py), so each phase first unsubscribes its targets in the Mailchimp
emulator (as people would, at the `fired_at` of their webhooks) and sets the Mailchimp latency
(`zero`: 0, `realistic`: `--provider-latency-ms`).

The apply code is measured as it is; the lower bound printed for the realistic phase counts
round trips one after another per connection: the confirmation reads (at least the listing of
the members changed since the burst began, 1000 a page, and the archived members' listing) at
the Mailchimp latency, then per `--bound-batch` events one onOffice lookup, a modify per event
and one activity action for the batch (a phase's unsubscribes share their note and time, so
their activities are one agentslog action listing the addresses), `--bound-actions` actions to
a request, at the onOffice latency. (Until 012deee it counted an activity action per event,
168 s instead of 96 s for 20,000 events at 200 ms, which flattered the ratio; before the
confirmation reads it counted onOffice round trips only.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil
import uvloop

from bench.http1 import Http1Connection, Http1Error
from bench.report import run_benchmark, table
from bench.stack import (
    BENCH_METRICS_TOKEN,
    MAILCHIMP_KEY,
    BenchError,
    Stack,
    activate_and_connect,
    add_worker_args,
    bench_ports,
    database_url,
    launch_connector,
    note,
    on_fresh_stack,
    parse_bench_args,
    start_emulator,
)

LATENCIES_MS = {"zero": 0.0, "realistic": 200.0}
CONFIRM_PAGE = 1000  # members a Mailchimp listing returns per request


@dataclass
class Phase:
    latency: str
    events: int
    burst_s: float
    acks: int
    errors: Counter[str]
    latencies_ms: list[float]
    applied: int
    apply_s: float | None  # from the end of the burst until all applied; None: timed out
    waited_s: float
    lost: int
    applied_twice: int
    lower_bound_s: float
    cpu_ms: dict[str, float]  # CPU per acknowledged event during the burst, per component
    served: str  # the API's own latency histogram of the burst
    # From the burst's start until all applied (deterministic, unlike the wall times on a
    # shared machine): onOffice HTTP requests by their actions' kinds, the most in flight at
    # once, Mailchimp requests by endpoint; applied when the burst ended; load averages.
    onoffice_requests: dict[str, int]
    onoffice_peak: int
    onoffice_busy_s: float  # with at least one onOffice request in flight
    # Events the connector stored from the burst's start until a few seconds after all were
    # applied, by origin and outcome ("webhook applied", "reconciliation ignored": the
    # periodic reconciliation also finds the phase's opt-outs at Mailchimp).
    stored: dict[str, int]
    window_s: float  # from the burst's start until all applied (or the timeout)
    mailchimp_requests: dict[str, int]
    applied_in_burst: int
    load: tuple[float, float]  # 1-minute load average at the burst's start and at the end

    def figures(self) -> dict[str, Any]:
        q = _quantiles(self.latencies_ms)
        after_burst = self.apply_s if self.apply_s is not None else self.waited_s
        return {
            "latency": self.latency,
            "events": self.events,
            "acks_per_s": round(self.acks / self.burst_s, 1) if self.burst_s else None,
            "ack_p50_ms": q[0],
            "ack_p99_ms": q[1],
            "ack_errors": sum(self.errors.values()),
            "applied": self.applied,
            "all_applied_s": round(self.apply_s, 1) if self.apply_s is not None else None,
            "applied_per_s": round(self.applied / after_burst, 1) if after_burst else None,
            "lower_bound_s": round(self.lower_bound_s, 1),
            "lost": self.lost,
            "applied_twice": self.applied_twice,
            "burst_cpu_ms_per_event": {k: round(v, 2) for k, v in self.cpu_ms.items()},
            "applied_in_burst": self.applied_in_burst,
            "onoffice_requests": self.onoffice_requests,
            "onoffice_max_in_flight": self.onoffice_peak,
            "onoffice_busy_s": round(self.onoffice_busy_s, 1),
            "events_stored": self.stored,
            "window_s": round(self.window_s, 1),
            "mailchimp_requests": self.mailchimp_requests,
            "load_1min": list(self.load),
        }


def _quantiles(values: list[float]) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (None, None)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return round(cuts[49], 1), round(cuts[98], 1)


def apply_lower_bound(
    events: int,
    latency_ms: float,
    batch: int,
    actions: int,
    activity_groups: int = 1,
    provider_latency_ms: float = 0.0,
    provider_page: int = CONFIRM_PAGE,
) -> float:
    """Round trips one after another per connection. The confirmation reads at Mailchimp: the
    members changed since the burst began, `provider_page` a request, and the archived
    members changed since (one request). onOffice: per batch of `batch` events one lookup,
    then a modify per event and one activity action per group of identical activities (same
    kind, type, note and time: onOffice creates one entry per address id of an action),
    `actions` to a request. Every unsubscribe of a phase has the same reason and time, so a
    batch needs `activity_groups` = 1 activity action."""
    full, rest = divmod(events, batch)
    sizes = [batch] * full + ([rest] if rest else [])
    requests = sum(1 + math.ceil((size + activity_groups) / actions) for size in sizes)
    reads = math.ceil(events / provider_page) + 1
    return (requests * latency_ms + reads * provider_latency_ms) / 1000


def address_records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": n,
            "KdNr": n,
            "Anrede": "Frau",
            "Vorname": "Anna",
            "Name": f"Test{n}",
            "Email": f"person{n}@example.de",
            "newsletter_aktiv": "1",
            "Status": 1,
        }
        for n in range(1, count + 1)
    ]


def unsubscribe_form(n: int, list_id: str, fired_at: str) -> dict[str, str]:
    # `fired_at` is now (Mailchimp's clock, UTC, to the second): after the full sync, so the
    # consent rule takes it as the newest signal; the members were unsubscribed at Mailchimp
    # first, so the connector's confirmation read finds them unsubscribed.
    return {
        "type": "unsubscribe",
        "fired_at": fired_at,
        "data[action]": "unsub",
        "data[reason]": "manual",
        "data[email]": f"person{n}@example.de",
        "data[list_id]": list_id,
        "data[id]": f"id{n}",
    }


class _HttpxSender:
    """httpx, one client (and connection) per sender."""

    def __init__(self, url: str) -> None:
        self.url = url
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.client = httpx.AsyncClient(timeout=60, limits=limits)

    async def post(self, body: bytes) -> int:
        return (await self.client.post(self.url, content=body, headers=FORM_HEADERS)).status_code

    async def aclose(self) -> None:
        await self.client.aclose()


class _RawSender:
    """bench.http1: a keep-alive connection per sender, a tenth of httpx's CPU."""

    def __init__(self, url: str) -> None:
        self.conn = Http1Connection(url)

    async def post(self, body: bytes) -> int:
        return (await self.conn.post(body, FORM))[0]

    async def aclose(self) -> None:
        await self.conn.aclose()


SENDERS: dict[str, type[_HttpxSender | _RawSender]] = {"raw": _RawSender, "httpx": _HttpxSender}
FORM = "application/x-www-form-urlencoded"
FORM_HEADERS = {"Content-Type": FORM}


async def _send_share(
    url: str, bodies: list[bytes], senders: int, rate: float, client: str
) -> tuple[float, float, int, Counter[str], list[float], float]:
    """One sender process: `senders` concurrent senders, each with its own HTTP connection
    (one shared httpx pool slows down badly with many concurrent requests: 50 senders on one
    pool managed about 60 requests/s against a trivial server here). With `rate` > 0 sending is
    paced (open loop: request i starts at i / rate seconds)."""
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    acks = 0
    make: type[_HttpxSender | _RawSender] = SENDERS[client]
    clients = [make(url) for _ in range(senders)]
    cpu = time.process_time()
    started = time.monotonic()

    async def sender(http: _HttpxSender | _RawSender) -> None:
        nonlocal acks
        while True:
            try:
                index, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if rate > 0:
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
            begin = time.perf_counter()
            try:
                status = await http.post(body)
            except (TimeoutError, httpx.HTTPError, OSError, Http1Error) as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append((time.perf_counter() - begin) * 1000)
            if status == 200:
                acks += 1
            else:
                errors[str(status)] += 1

    try:
        await asyncio.gather(*(sender(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    return started, time.monotonic(), acks, errors, latencies, time.process_time() - cpu


def _send_share_process(
    url: str, bodies: list[bytes], senders: int, rate: float, client: str, at: float
) -> tuple[float, float, int, Counter[str], list[float], float]:
    time.sleep(max(0.0, at - time.time()))  # every process starts at the same moment
    share = uvloop.run(_send_share(url, bodies, senders, rate, client))
    offset = time.time() - time.monotonic()  # monotonic clocks differ between processes
    return share[0] + offset, share[1] + offset, *share[2:]


async def burst(
    url: str,
    bodies: list[bytes],
    senders: int,
    procs: int = 1,
    rate: float = 0.0,
    client: str = "raw",
) -> tuple[float, int, Counter[str], list[float], float]:
    """Send the forms from `procs` processes with `senders` senders in all; (seconds from the
    first request to the last answer, acks, errors, ack latencies in ms, the senders' CPU s)."""
    procs = max(1, min(procs, senders))
    shares = [bodies[i::procs] for i in range(procs)]
    per_proc = [senders // procs + (1 if i < senders % procs else 0) for i in range(procs)]
    loop = asyncio.get_running_loop()
    at = time.time() + 1.0
    with ProcessPoolExecutor(max_workers=procs) as pool:
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _send_share_process, url, share, n, rate / procs, client, at
                )
                for share, n in zip(shares, per_proc, strict=True)
            )
        )
    errors: Counter[str] = Counter()
    latencies: list[float] = []
    for _, _, _, errs, lats, _ in results:
        errors.update(errs)
        latencies.extend(lats)
    acks = sum(r[2] for r in results)
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    return wall, acks, errors, latencies, sum(r[5] for r in results)


async def onoffice_progress(
    client: httpx.AsyncClient, onoffice: str, targets: range
) -> tuple[int, int]:
    """(targets with newsletter no longer Yes, targets with more than one activity), counted
    by the emulator: reading its whole state every poll blocked it for a good part of a second
    each time and slowed down the drain being measured (until 012deee)."""
    params = {"first": targets.start, "last": targets.stop - 1}
    answer = (await client.get(f"{onoffice}/_control/progress", params=params)).json()
    return int(answer["not_yes"]), int(answer["twice"])


async def request_counts(
    client: httpx.AsyncClient, onoffice: str, mailchimp: str, *, reset_peak: bool = False
) -> tuple[dict[str, int], int, dict[str, int], float]:
    """(onOffice HTTP requests by kinds of actions, most in flight at once since the last
    reset, Mailchimp requests by endpoint, seconds onOffice had a request in flight) so far,
    from the emulators' control APIs."""
    flag = "1" if reset_peak else "0"
    oo = (await client.get(f"{onoffice}/_control/requests", params={"reset_peak": flag})).json()
    mc = (await client.get(f"{mailchimp}/_control/stats")).json()
    listed = {k: int(mc[k]) for k in ("changed_pages", "changed_pages_from_start")}
    requests = dict(mc["requests"]) | listed
    return dict(oo["kinds"]), int(oo["max_in_flight"]), requests, float(oo["busy_s"])


async def stored_events(args: argparse.Namespace) -> dict[str, int]:
    """The connector's stored provider events so far, by origin (a webhook, or the periodic
    reconciliation: `reconcile…` keys) and status."""
    conn = await asyncpg.connect(database_url(args).replace("+asyncpg", "", 1))
    try:
        rows = await conn.fetch(
            "SELECT CASE WHEN dedupe_key LIKE 'reconcile%' THEN 'reconciliation' ELSE 'webhook'"
            " END AS origin, status, count(*) AS n FROM inbound_event GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    return {f"{r['origin']} {r['status']}": int(r["n"]) for r in rows}


def _since(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    diff = {k: n - before.get(k, 0) for k, n in after.items()}
    return {k: n for k, n in sorted(diff.items(), key=lambda kv: -kv[1]) if n}


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) so far of the stack's processes (the workers summed), and of
    every PostgreSQL and Redis server process on the machine (other users' share included)."""
    seconds: Counter[str] = Counter()
    procs = [(p.name.rstrip("0123456789"), p.ps) for p in stack.procs]
    for ps in psutil.process_iter(["name"]):
        name = ps.info["name"] or ""
        if name.startswith(("postgres", "redis-server")):
            procs.append(("postgres" if name.startswith("postgres") else "redis", ps))
    for name, ps in procs:
        with contextlib.suppress(psutil.Error):
            t = ps.cpu_times()
            seconds[name] += t.user + t.system
    return dict(seconds)


HOOK_ROUTE = 'route="/webhooks/mailchimp/{token}"'


async def served_within(client: httpx.AsyncClient, hook_url: str) -> dict[float, float]:
    """The API's own latency histogram of the Mailchimp webhook route (its /metrics):
    cumulative count per bucket bound in seconds. Server-side: no client, no connection."""
    api = hook_url.split("/webhooks/", 1)[0]
    auth = {"Authorization": f"Bearer {BENCH_METRICS_TOKEN}"}
    text = (await client.get(f"{api}/metrics", headers=auth)).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("connector_http_request_seconds_bucket{") and HOOK_ROUTE in line:
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def server_row(before: dict[float, float], after: dict[float, float]) -> str:
    counts = {b: n - before.get(b, 0.0) for b, n in after.items()}
    total = counts.get(float("inf"), 0.0)
    if not total:
        return "unknown"
    shown = [b for b in sorted(counts) if b in (0.01, 0.025, 0.05, 0.1, 0.25)]
    return ", ".join(f"{counts[b] / total:.1%} within {b * 1000:g} ms" for b in shown)


async def run_phase(
    args: argparse.Namespace,
    stack: Stack,
    client: httpx.AsyncClient,
    onoffice: str,
    mailchimp: str,
    hook_url: str,
    list_id: str,
    latency: str,
    first: int,
) -> Phase:
    latency_ms = LATENCIES_MS[latency]
    provider_ms = args.provider_latency_ms if latency_ms else 0.0
    await client.post(f"{onoffice}/_control/latency", json={"seconds": latency_ms / 1000})
    targets = range(first, first + args.events)
    # More than the consent rule's 5 s tie after the sync's last change.
    await asyncio.sleep(6)
    fired = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    # The people unsubscribe at Mailchimp first: the connector confirms each webhook there.
    await client.post(
        f"{mailchimp}/_control/lists/{list_id}/members/actions",
        json={
            "action": "unsubscribe",
            "emails": [f"person{n}@example.de" for n in targets],
            "at": fired.replace(" ", "T") + "+00:00",
        },
    )
    await client.post(f"{mailchimp}/_control/config", json={"latency_s": provider_ms / 1000})
    bodies = [urlencode(unsubscribe_form(n, list_id, fired)).encode() for n in targets]
    note(f"[{latency}] sending {args.events} unsubscribes, {args.senders} senders")
    cpu_before = cpu_seconds(stack)
    served_before = await served_within(client, hook_url)
    load_start = os.getloadavg()[0]
    counted = await request_counts(client, onoffice, mailchimp, reset_peak=True)
    oo_before, _, mc_before, busy_before = counted
    window_start = time.monotonic()
    stored_before = await stored_events(args)
    burst_s, acks, errors, latencies, sender_cpu = await burst(
        hook_url, bodies, args.senders, args.sender_procs, args.rate, args.client
    )
    used = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_seconds(stack).items()}
    used["senders"] = sender_cpu
    cpu_ms = {k: v * 1000 / max(1, acks) for k, v in used.items()}
    served = server_row(served_before, await served_within(client, hook_url))
    note(f"[{latency}] burst took {burst_s:.1f} s ({acks} acknowledged); waiting for onOffice")
    burst_end = time.monotonic()
    applied, twice, done_at = 0, 0, None
    last_note = 0.0
    in_burst: int | None = None
    while time.monotonic() - burst_end < args.apply_timeout:
        applied, twice = await onoffice_progress(client, onoffice, targets)
        in_burst = applied if in_burst is None else in_burst
        now = time.monotonic()
        if applied >= args.events:
            done_at = now - burst_end
            break
        if now - last_note >= 15:
            note(f"  [{latency}] {now - burst_end:6.1f} s after the burst: {applied} applied")
            last_note = now
        await asyncio.sleep(args.poll_s)
    waited = time.monotonic() - burst_end
    oo_after, oo_peak, mc_after, busy_after = await request_counts(client, onoffice, mailchimp)
    window = time.monotonic() - window_start
    load_end = os.getloadavg()[0]
    await asyncio.sleep(min(5.0, args.poll_s * 2))  # late duplicates would show up now
    stored = _since(await stored_events(args), stored_before)  # settled by now
    applied, twice = await onoffice_progress(client, onoffice, targets)
    if done_at is None and applied >= args.events:
        done_at = time.monotonic() - burst_end  # finished during the last wait: an upper bound
    return Phase(
        latency=latency,
        events=args.events,
        burst_s=burst_s,
        acks=acks,
        errors=errors,
        latencies_ms=latencies,
        applied=applied,
        apply_s=done_at,
        waited_s=waited,
        lost=args.events - applied if done_at is not None else 0,
        applied_twice=twice,
        lower_bound_s=apply_lower_bound(
            args.events,
            latency_ms,
            args.bound_batch,
            args.bound_actions,
            provider_latency_ms=provider_ms,
        ),
        cpu_ms=cpu_ms,
        served=served,
        onoffice_requests=_since(oo_after, oo_before),
        onoffice_peak=oo_peak,
        onoffice_busy_s=busy_after - busy_before,
        window_s=window,
        stored=stored,
        mailchimp_requests=_since(mc_after, mc_before),
        applied_in_burst=in_burst or 0,
        load=(load_start, load_end),
    )


async def amain(args: argparse.Namespace, log_dir: Path) -> list[Phase]:
    return await on_fresh_stack(args, log_dir, lambda stack, client: _amain(args, stack, client))


async def _amain(args: argparse.Namespace, stack: Stack, client: httpx.AsyncClient) -> list[Phase]:
    latencies = [x for x in args.latencies.split(",") if x]
    total = args.events * len(latencies)
    oo_port, mc_port, api_port = bench_ports(args, 3)
    oo = start_emulator(stack, "onoffice", oo_port)
    mc = start_emulator(stack, "mailchimp", mc_port)
    await oo.ready(client)
    await mc.ready(client)
    onoffice, mailchimp = oo.url, mc.url
    await client.post(f"{onoffice}/_control/addresses", json={"addresses": address_records(total)})
    api = (await launch_connector(stack, client, args, onoffice, mailchimp, port=api_port)).url
    token, _ = await activate_and_connect(client, api, onoffice, "mailchimp", MAILCHIMP_KEY)

    note(f"full sync of {total} addresses first, so every email is a synced contact")
    headers = {"Authorization": f"Bearer {token}"}
    run = (await client.post(f"{api}/api/v1/syncs", headers=headers)).json()
    deadline = time.monotonic() + args.sync_timeout
    while True:
        body = (await client.get(f"{api}/api/v1/syncs/{run['id']}", headers=headers)).json()
        if body["status"] in ("completed", "failed"):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"the full sync did not finish within {args.sync_timeout:.0f} s")
        await asyncio.sleep(0.5)
    if body["status"] != "completed" or body["counts"]["synced"] != total:
        raise BenchError(f"the full sync did not sync every address: {body}")

    lists = (await client.get(f"{mailchimp}/_control/lists")).json()["lists"]
    audience = next(x for x in lists if x["name"] == "onoffice")
    (hook,) = audience["webhooks"]
    phases = []
    for index, latency in enumerate(latencies):
        phase = await run_phase(
            args,
            stack,
            client,
            onoffice,
            mailchimp,
            hook["url"],
            audience["id"],
            latency,
            1 + index * args.events,
        )
        phases.append(phase)
    return phases


def cpu_row(cpu_ms: dict[str, float]) -> str:
    """The burst's CPU per acknowledged event, and the rate the machine's cores allow at it."""
    total = sum(cpu_ms.values())
    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu_ms.items(), key=lambda kv: -kv[1]))
    cores = psutil.cpu_count() or 1
    bound = f"; {cores} cores allow {cores * 1000 / total:.0f} acks/s at most" if total else ""
    return f"{total:.2f} ms ({parts}){bound}"


def _counts_row(counts: dict[str, int]) -> str:
    return f"{sum(counts.values())} (" + ", ".join(f"{k} {n}" for k, n in counts.items()) + ")"


def report(args: argparse.Namespace, phases: list[Phase]) -> None:
    for phase in phases:
        f = phase.figures()
        rows = [
            ("events (distinct unsubscribes)", str(f["events"])),
            (
                "burst",
                f"{phase.burst_s:.1f} s, {args.senders} concurrent senders in "
                f"{args.sender_procs} processes ({args.client} client)"
                + (f", paced at {args.rate:g}/s" if args.rate else ""),
            ),
            ("acknowledged", f"{phase.acks}  ({f['acks_per_s']} acks/s; target ≥ 500)"),
            ("ack latency p50 / p99", f"{f['ack_p50_ms']} / {f['ack_p99_ms']} ms (target ≤ 50)"),
            ("served by the API (its histogram)", phase.served),
            ("ack errors", ", ".join(f"{k} {v}" for k, v in phase.errors.items()) or "none"),
            (
                "all applied in onOffice",
                f"{f['all_applied_s']} s after the burst"
                if phase.apply_s is not None
                else f"NOT within {phase.waited_s:.0f} s: {phase.applied} of {phase.events}",
            ),
            ("apply rate", f"{f['applied_per_s']} events/s"),
            ("lower bound (confirmation reads, onOffice round trips)", f"{f['lower_bound_s']} s"),
            ("lost", str(f["lost"]) if phase.apply_s is not None else "unknown (timed out)"),
            ("applied twice (>1 activity)", str(f["applied_twice"])),
            ("CPU per ack during the burst", cpu_row(phase.cpu_ms)),
            ("applied when the burst ended", str(phase.applied_in_burst)),
            (
                "onOffice HTTP requests (burst start → all applied)",
                _counts_row(phase.onoffice_requests)
                + f"; at most {phase.onoffice_peak} in flight at once",
            ),
            (
                "onOffice busy (≥ 1 request in flight)",
                f"{phase.onoffice_busy_s:.1f} s of {phase.window_s:.1f} s from the burst's start "
                f"until all applied ({phase.onoffice_busy_s / max(phase.window_s, 1e-9):.0%})",
            ),
            ("events stored (origin, status; settled)", _counts_row(phase.stored)),
            (
                "Mailchimp requests (burst start → all applied)",
                _counts_row(phase.mailchimp_requests),
            ),
            (
                "load average (1 min) at the burst / at the end",
                f"{phase.load[0]:.1f} / {phase.load[1]:.1f}",
            ),
        ]
        print()
        print(table(rows, f"Webhooks — onOffice latency {phase.latency}"))
    print()
    print(json.dumps({"webhooks": [p.figures() for p in phases]}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.webhooks", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000, help="webhooks per phase")
    p.add_argument("--latencies", default="zero,realistic", help="phases: zero, realistic")
    p.add_argument("--senders", type=int, default=50, help="concurrent HTTP senders")
    p.add_argument(
        "--sender-procs", type=int, default=2, help="processes the senders are spread over"
    )
    p.add_argument(
        "--client",
        choices=sorted(SENDERS),
        default="raw",
        help="the senders' HTTP client: raw (bench/http1.py, cheap) or httpx",
    )
    p.add_argument(
        "--rate", type=float, default=0.0, help="pace the burst at this many events/s (0: flat out)"
    )
    add_worker_args(p)
    p.add_argument("--apply-timeout", type=float, default=300.0, help="seconds per phase")
    p.add_argument("--sync-timeout", type=float, default=600.0)
    p.add_argument("--poll-s", type=float, default=2.0, help="onOffice state polling")
    p.add_argument("--bound-batch", type=int, default=500, help="events per lookup (bound)")
    p.add_argument("--bound-actions", type=int, default=50, help="actions per request (bound)")
    p.add_argument(
        "--provider-latency-ms",
        type=float,
        default=150.0,
        help="Mailchimp latency of the realistic phase (the confirmation reads)",
    )
    p.add_argument(
        "--port-base", type=int, default=0, help="ports of onOffice, Mailchimp, API (0: any free)"
    )
    args = parse_bench_args(p, argv, "connector_bench_webhooks")
    if any(x not in LATENCIES_MS for x in args.latencies.split(",") if x):
        p.error(f"--latencies: choose from {', '.join(LATENCIES_MS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [
        ("events per phase", str(args.events)),
        ("phases (onOffice latency)", ", ".join(f"{k} {LATENCIES_MS[k]:g} ms" for k in
                                                args.latencies.split(",") if k)),
    ]  # fmt: skip
    return run_benchmark(
        args, "Webhook benchmark", rows, "connector-bench-webhooks-", amain, report
    )


if __name__ == "__main__":
    sys.exit(main())
