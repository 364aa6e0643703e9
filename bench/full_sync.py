"""Full-sync benchmark: the real connector (API + arq workers) against the emulators, end to end.

Every component runs as its own process, like in production: the onOffice, Mailchimp and Brevo
emulators (with per-request latency), the connector API (`app.cli serve`) and W arq workers
(`app.cli worker`), on a freshly created and migrated PostgreSQL database and a flushed Redis db.
The script activates a tenant through the signed marketplace flow, opens a session, saves the
connection, starts a full sync, polls it to the end while sampling the RSS of the API and of
every worker, then starts a second (no-op) sync, and prints its figures.

    .venv/bin/python -m bench.full_sync --contacts 10000 --provider mailchimp --workers 2
    .venv/bin/python -m bench.full_sync --sizes 10000,50000 --provider mailchimp

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import psutil
from redis.asyncio import Redis

from app.cli import migrate
from app.crypto import generate_key
from onoffice_client.signature import sign_url_params

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_SECRET = "bench-provider-secret"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us1"  # emulators.mailchimp.DEFAULT_API_KEY
BREVO_KEY = "test-key-de"  # seeded by `python -m emulators.brevo`
TENANT_TOKEN, TENANT_SECRET, TENANT_CLAIM, WEB_ID = "t" * 32, "s" * 64, "bench-claim", "B1"
# Kept in step with emulators.onoffice_data._INVALID_EMAILS (the generator's invalid values).
INVALID_EMAILS = {"max.mustermann@", "kein email", "a@b", "@example.de", "müller at web.de"}
MB = 1024 * 1024
EMULATORS = ("onoffice", "mailchimp", "brevo")


class BenchError(RuntimeError):
    pass


# -------------------------------------------------------------------------------------------------
# Processes
# -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    """Every child process of one benchmark size; `stop()` ends exactly these, by pid."""

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


# -------------------------------------------------------------------------------------------------
# RSS / CPU sampling
# -------------------------------------------------------------------------------------------------


@dataclass
class ProcStats:
    start_rss: int = 0
    peak_rss: int = 0
    end_rss: int = 0
    cpu_s: float = 0.0


class Sampler:
    """Samples the RSS of the given processes every `interval` seconds while a run lasts."""

    def __init__(self, procs: list[Proc], interval: float) -> None:
        self.procs = procs
        self.interval = interval
        self.stats: dict[str, ProcStats] = {}
        self._cpu0: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _rss(proc: Proc) -> int:
        try:
            return int(proc.ps.memory_info().rss)
        except psutil.Error:
            return 0

    @staticmethod
    def _cpu(proc: Proc) -> float:
        try:
            t = proc.ps.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    def sample(self) -> None:
        for proc in self.procs:
            rss = self._rss(proc)
            st = self.stats[proc.name]
            st.peak_rss = max(st.peak_rss, rss)
            if rss:
                st.end_rss = rss

    async def _loop(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        for proc in self.procs:
            rss = self._rss(proc)
            self.stats[proc.name] = ProcStats(start_rss=rss, peak_rss=rss, end_rss=rss)
            self._cpu0[proc.name] = self._cpu(proc)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> dict[str, ProcStats]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample()
        for proc in self.procs:
            self.stats[proc.name].cpu_s = self._cpu(proc) - self._cpu0[proc.name]
        return self.stats


# -------------------------------------------------------------------------------------------------
# Emulator statistics
# -------------------------------------------------------------------------------------------------


def _template(key: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", key)


class ProviderCounter:
    """Per-endpoint request counts from an emulator's control API."""

    def __init__(self, client: httpx.AsyncClient, provider: str, url: str) -> None:
        self.client, self.provider, self.url = client, provider, url

    async def snapshot(self) -> tuple[Counter[str], dict[str, Any]]:
        if self.provider == "mailchimp":
            data = (await self.client.get(f"{self.url}/_control/stats")).json()
            return Counter(data["requests"]), data
        data = (await self.client.get(f"{self.url}/_control/state")).json()
        counts: Counter[str] = Counter()
        for key, n in data["request_counts"].items():
            counts[_template(key)] += n
        return counts, data

    async def reset_mailchimp_peaks(self) -> None:
        if self.provider == "mailchimp":
            await self.client.post(f"{self.url}/_control/stats/reset")


async def onoffice_counts(client: httpx.AsyncClient, url: str) -> tuple[int, Counter[str]]:
    data = (await client.get(f"{url}/_control/state", params={"addresses": "false"})).json()
    return int(data["http_requests"]), Counter(data["request_counts"])


def writes(counts: Mapping[str, int]) -> int:
    return sum(n for key, n in counts.items() if not key.startswith("GET"))


# -------------------------------------------------------------------------------------------------
# Expected outcome (computed independently of the connector, from the emulator's own records)
# -------------------------------------------------------------------------------------------------


def expected_outcome(addresses: list[dict[str, Any]]) -> dict[str, int]:
    subscribed = [
        a
        for a in sorted(addresses, key=lambda a: a["id"])
        if str(a.get("newsletter_aktiv")) == "1" and str(a.get("Status", "1")) == "1"
    ]
    owners: set[str] = set()
    missing = invalid = duplicates = 0
    for a in subscribed:
        email = (a.get("Email") or "").strip().lower()
        if not email:
            missing += 1
        elif email in INVALID_EMAILS:
            invalid += 1
        elif email in owners:
            duplicates += 1
        else:
            owners.add(email)
    return {
        "total": len(subscribed),
        "unique": len(owners),
        "duplicates": duplicates,
        "missing": missing,
        "invalid": invalid + missing,  # the connector's invalid_emails includes missing ones
    }


# -------------------------------------------------------------------------------------------------
# The connector over HTTP (marketplace activation, session, connection, syncs)
# -------------------------------------------------------------------------------------------------


def signed_query(base_url: str, path: str, params: Mapping[str, str]) -> dict[str, str]:
    return {**params, "signature": sign_url_params(base_url + path, params, PROVIDER_SECRET)}


async def activate_and_login(client: httpx.AsyncClient, api: str, onoffice: str) -> str:
    cache_id = f"cache-{WEB_ID}"
    await client.post(
        f"{onoffice}/_control/customers",
        json={"token": TENANT_TOKEN, "secret": TENANT_SECRET, "claim": TENANT_CLAIM},
    )
    await client.post(
        f"{onoffice}/_control/parameter-caches",
        json={"id": cache_id, "claim": f"activation-{WEB_ID}"},
    )
    params = {
        "apiToken": TENANT_TOKEN,
        "apiClaim": f"activation-{WEB_ID}",
        "customerName": f"Makler {WEB_ID}",
        "customerWebId": WEB_ID,
        "userId": "17",
        "parameterCacheId": cache_id,
        "timestamp": str(int(time.time())),
    }
    query = signed_query(api, "/onoffice/activate", params)
    response = await client.post(
        f"{api}/onoffice/activate", data={**query, "secret": TENANT_SECRET}
    )
    if response.text != "active":
        raise BenchError(f"activation failed: {response.status_code} {response.text[:500]}")
    params = {
        "customerWebId": WEB_ID,
        "customerName": f"Makler {WEB_ID}",
        "userId": "17",
        "apiClaim": TENANT_CLAIM,
        "timestamp": str(int(time.time())),
    }
    query_s = urlencode(signed_query(api, "/onoffice/app", params))
    response = await client.post(f"{api}/api/v1/sessions", json={"query": query_s})
    if not response.is_success:
        raise BenchError(f"session failed: {response.status_code} {response.text[:500]}")
    return str(response.json()["token"])


@dataclass
class RunResult:
    run: dict[str, Any]
    wall_s: float
    rss: dict[str, ProcStats]
    provider_requests: Counter[str]
    provider_extra: dict[str, Any]
    onoffice_http: int
    onoffice_actions: Counter[str]


async def timed_sync(
    client: httpx.AsyncClient,
    api: str,
    token: str,
    sampler: Sampler,
    providers: ProviderCounter,
    onoffice: str,
    *,
    label: str,
    limit_s: float,
) -> RunResult:
    headers = {"Authorization": f"Bearer {token}"}
    await providers.reset_mailchimp_peaks()
    prov0, extra0 = await providers.snapshot()
    oo_http0, oo_actions0 = await onoffice_counts(client, onoffice)
    sampler.start()
    started = time.monotonic()
    response = await client.post(f"{api}/api/v1/syncs", headers=headers)
    if response.status_code != 202:
        await sampler.stop()
        raise BenchError(f"starting the sync failed: {response.status_code} {response.text}")
    run_id = response.json()["id"]
    last_note = 0.0
    while True:
        body: dict[str, Any] = (
            await client.get(f"{api}/api/v1/syncs/{run_id}", headers=headers)
        ).json()
        now = time.monotonic()
        if body.get("status") in ("completed", "failed"):
            break
        for proc in sampler.procs:
            if not proc.alive():
                await sampler.stop()
                raise BenchError(f"{proc.name} died during the run:\n{proc.tail()}")
        if now - started > limit_s:
            await sampler.stop()
            raise BenchError(
                f"{label}: run {run_id} did not finish within {limit_s:.0f} s; "
                f"progress {body.get('progress')}"
            )
        if now - last_note >= 10:
            p = body.get("progress") or {}
            note(
                f"  {label}: {now - started:6.1f} s  phase={p.get('phase')} "
                f"read={p.get('addresses_read')} batches={p.get('batches_done')}/"
                f"{p.get('batches_total')}"
            )
            last_note = now
        await asyncio.sleep(0.25)
    wall = time.monotonic() - started
    rss = await sampler.stop()
    prov1, extra1 = await providers.snapshot()
    oo_http1, oo_actions1 = await onoffice_counts(client, onoffice)
    extra: dict[str, Any] = {}
    if providers.provider == "mailchimp":
        extra["max_concurrency"] = extra1.get("max_concurrency")
        extra["429 (>10 connections)"] = extra1.get("concurrency_rejections")
    else:
        extra["429 (rate limit)"] = int(extra1.get("rate_limited", 0)) - int(
            extra0.get("rate_limited", 0)
        )
    extra["spec violations"] = int(
        extra1.get("spec_violations", 0) - extra0.get("spec_violations", 0)
    )
    return RunResult(
        run=body,
        wall_s=wall,
        rss=rss,
        provider_requests=prov1 - prov0,
        provider_extra=extra,
        onoffice_http=oo_http1 - oo_http0,
        onoffice_actions=oo_actions1 - oo_actions0,
    )


# -------------------------------------------------------------------------------------------------
# One benchmark size
# -------------------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    contacts: int
    expected: dict[str, int]
    first: RunResult
    second: RunResult
    worker_names: list[str]
    setup_s: float


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def bench_size(args: argparse.Namespace, contacts: int, log_dir: Path) -> SizeResult:
    setup_started = time.monotonic()
    await recreate_database(args)
    db_url = database_url(args)
    await asyncio.to_thread(migrate, db_url)
    rurl = redis_url(args)
    await flush_redis(rurl)
    stack = Stack(log_dir)
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            return await _bench_size(args, contacts, stack, client, db_url, rurl, setup_started)
    finally:
        stack.stop()
        with contextlib.suppress(Exception):
            await flush_redis(rurl)
        if not args.keep_db:
            await drop_database(args)


async def _bench_size(
    args: argparse.Namespace,
    contacts: int,
    stack: Stack,
    client: httpx.AsyncClient,
    db_url: str,
    rurl: str,
    setup_started: float,
) -> SizeResult:
    provider = args.provider
    oo_port, prov_port, api_port = free_port(), free_port(), free_port()
    oo_url, prov_url = f"http://127.0.0.1:{oo_port}", f"http://127.0.0.1:{prov_port}"
    api = f"http://127.0.0.1:{api_port}"
    latency_s = args.latency_ms / 1000

    note(f"[{contacts}] starting emulators (onOffice seeded with {contacts} addresses)")
    oo = stack.start(
        "onoffice",
        [
            "-m",
            "emulators.onoffice",
            "--port",
            str(oo_port),
            "--seed-addresses",
            str(contacts),
            "--seed",
            str(args.seed),
        ],
    )
    if provider == "mailchimp":
        argv = ["-m", "emulators.mailchimp", "--port", str(prov_port), "--latency", str(latency_s)]
        argv += ["--api-key", MAILCHIMP_KEY]
        if args.latency_per_item_us:
            argv += ["--latency-per-item", str(args.latency_per_item_us / 1e6)]
        prov = stack.start("mailchimp", argv)
        await wait_http(client, f"{prov_url}/_control/stats", prov)
    else:
        argv = ["-m", "emulators.brevo", "--port", str(prov_port), "--latency", str(latency_s)]
        prov = stack.start("brevo", argv)
        await wait_http(client, f"{prov_url}/_control/state", prov)
        await client.post(
            f"{prov_url}/_control/config",
            json={
                "latency_per_item": args.latency_per_item_us / 1e6,
                "import_delay": args.brevo_import_delay_s,
            },
        )
    await wait_http(client, f"{oo_url}/_control/state?addresses=false", oo, wait_s=300)
    await client.post(
        f"{oo_url}/_control/latency", json={"seconds": args.onoffice_latency_ms / 1000}
    )
    records = (await client.get(f"{oo_url}/_control/state")).json()["addresses"]
    expected = expected_outcome(records)
    del records

    env = dict(os.environ)
    env.update(
        {
            "ENV": "production",
            "DATABASE_URL": db_url,
            "REDIS_URL": rurl,
            "PUBLIC_BASE_URL": api,
            "ONOFFICE_API_URL": f"{oo_url}/api/stable/api.php",
            "MAILCHIMP_API_URL": f"{prov_url}/3.0",
            "BREVO_API_URL": f"{prov_url}/v3",
            "ONOFFICE_PROVIDER_SECRET": PROVIDER_SECRET,
            "ENCRYPTION_KEY": generate_key(),
            "LOG_LEVEL": args.log_level,
            "PYTHONPATH": str(ROOT),
        }
    )
    if args.worker_concurrency:
        env["WORKER_CONCURRENCY"] = str(args.worker_concurrency)
    note(f"[{contacts}] starting the connector API and {args.workers} worker(s)")
    api_proc = stack.start(
        "api", ["-m", "app.cli", "serve", "--no-migrate", "--port", str(api_port)], env
    )
    workers = [
        stack.start(f"worker{i + 1}", ["-m", "app.cli", "worker"], env) for i in range(args.workers)
    ]
    await wait_http(client, f"{api}/healthz", api_proc)

    token = await activate_and_login(client, api, oo_url)
    key = MAILCHIMP_KEY if provider == "mailchimp" else BREVO_KEY
    saved = await client.put(
        f"{api}/api/v1/connection",
        headers={"Authorization": f"Bearer {token}"},
        json={"provider": provider, "api_key": key},
    )
    if saved.status_code != 200:
        raise BenchError(f"saving the connection failed: {saved.status_code} {saved.text[:500]}")
    await asyncio.sleep(1.0)  # let the workers finish start-up before the baseline RSS sample
    setup_s = time.monotonic() - setup_started

    measured = [api_proc, *workers, oo, prov]  # emulators: CPU/RSS for reference only
    counter = ProviderCounter(client, provider, prov_url)
    note(f"[{contacts}] first sync ({expected['total']} newsletter=Yes addresses)")
    first = await timed_sync(
        client,
        api,
        token,
        Sampler(measured, args.sample_interval),
        counter,
        oo_url,
        label="sync 1",
        limit_s=args.timeout,
    )
    note(f"[{contacts}] first sync {first.run['status']} in {first.wall_s:.1f} s; second sync")
    second = await timed_sync(
        client,
        api,
        token,
        Sampler(measured, args.sample_interval),
        counter,
        oo_url,
        label="sync 2",
        limit_s=args.timeout,
    )
    note(f"[{contacts}] second sync {second.run['status']} in {second.wall_s:.1f} s")
    return SizeResult(contacts, expected, first, second, [w.name for w in workers], setup_s)


# -------------------------------------------------------------------------------------------------
# Report
# -------------------------------------------------------------------------------------------------


def mb(n: int) -> str:
    return f"{n / MB:7.1f}"


def signed_mb(n: int) -> str:
    return f"{n / MB:+7.1f}"


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def check(ok: bool) -> str:
    return "yes" if ok else "NO  <-- mismatch"


def run_report(r: SizeResult, result: RunResult, label: str, provider: str) -> str:
    run = result.run
    c = run["counts"]
    e = r.expected
    total = c["onoffice_newsletter_total"]
    balance = c["synced"] + c["duplicates"] + c["invalid_emails"] + c["rejected"]
    rows: list[tuple[str, str]] = [
        ("status", f"{run['status']}" + (f"  error: {run['error']}" if run.get("error") else "")),
        ("contacts seeded in onOffice", f"{r.contacts}"),
        (
            "newsletter=Yes addresses",
            f"{total}  (expected {e['total']}: {check(total == e['total'])})",
        ),
        (
            "synced",
            f"{c['synced']}  (created {c['created']}, updated {c['updated']}, "
            f"unchanged {c['unchanged']})",
        ),
        ("duplicates", f"{c['duplicates']}  (expected {e['duplicates']})"),
        (
            "invalid emails",
            f"{c['invalid_emails']} incl. {c['missing_emails']} missing  "
            f"(expected {e['invalid']} incl. {e['missing']})",
        ),
        ("rejected by provider", f"{c['rejected']}"),
        ("tags pulled back", f"{c['tags_pulled']}"),
        (
            "counts reconcile",
            f"{check(balance == total and bool(c['reconciled']))}  "
            f"(synced+duplicates+invalid+rejected = {balance}; API reconciled={c['reconciled']})",
        ),
        (
            "matches independent expectation",
            check(
                total == e["total"]
                and c["duplicates"] == e["duplicates"]
                and c["invalid_emails"] == e["invalid"]
                and c["synced"] + c["rejected"] == e["unique"]
            ),
        ),
        (
            "wall time (POST -> completed)",
            f"{result.wall_s:.1f} s  (run duration_s {run['duration_s']})",
        ),
        (
            "throughput",
            f"{total / result.wall_s:.0f} newsletter=Yes addresses/s "
            f"({c['synced'] / result.wall_s:.0f} synced contacts/s)",
        ),
        ("batches", f"{run['progress']['batches_done']}/{run['progress']['batches_total']}"),
        (
            f"{provider} requests",
            f"{sum(result.provider_requests.values())} total, "
            f"{writes(result.provider_requests)} writes (non-GET)",
        ),
    ]
    for key, n in sorted(result.provider_requests.items(), key=lambda kv: -kv[1]):
        rows.append((f"    {key}", str(n)))
    for key, value in result.provider_extra.items():
        rows.append((f"  {provider} {key}", str(value)))
    rows.append(
        (
            "onOffice HTTP requests",
            f"{result.onoffice_http}  ("
            + ", ".join(f"{k} {v}" for k, v in sorted(result.onoffice_actions.items()))
            + ")",
        )
    )
    rows.append(("RSS (MB)", "   start     peak      end   growth  peak-start   CPU s"))
    for name, st in result.rss.items():
        rows.append(
            (
                f"  {name}" + (" (emulator)" if name in EMULATORS else ""),
                f"{mb(st.start_rss)}  {mb(st.peak_rss)}  {mb(st.end_rss)}  "
                f"{signed_mb(st.end_rss - st.start_rss)}  {signed_mb(st.peak_rss - st.start_rss)}"
                f"     {st.cpu_s:6.1f}",
            )
        )
    return table(rows, f"{label} — {r.contacts} contacts, {provider}")


def print_reports(args: argparse.Namespace, results: list[SizeResult]) -> None:
    for r in results:
        print()
        print(run_report(r, r.first, "First full sync", args.provider))
        s = r.second
        sc = s.run["counts"]
        n_writes = writes(s.provider_requests)
        n_reads = sum(s.provider_requests.values()) - n_writes
        by_endpoint = ", ".join(f"{k} {v}" for k, v in sorted(s.provider_requests.items()))
        rows = [
            ("status", s.run["status"]),
            ("wall time", f"{s.wall_s:.1f} s  (run duration_s {s.run['duration_s']})"),
            (
                f"{args.provider} write requests",
                f"{n_writes}  (reads {n_reads}: {by_endpoint or '-'})",
            ),
            ("unchanged (not resent)", f"{sc['unchanged']} of {sc['onoffice_newsletter_total']}"),
            ("synced / rejected", f"{sc['synced']} / {sc['rejected']}"),
            ("onOffice HTTP requests", str(s.onoffice_http)),
            (
                "peak RSS (MB)",
                ", ".join(
                    f"{n} {st.peak_rss / MB:.1f}" for n, st in s.rss.items() if n not in EMULATORS
                ),
            ),
            (
                "CPU s",
                ", ".join(f"{n} {st.cpu_s:.1f}" for n, st in s.rss.items()),
            ),
        ]
        print()
        print(table(rows, f"Second sync (nothing changed) — {r.contacts} contacts"))
    if len(results) > 1:
        print()
        head = (
            f"  {'contacts':>8} {'nl=Yes':>7} {'sync1 s':>8} {'addr/s':>7} {'sync2 s':>8} "
            f"{'writes2':>7} {'API peak':>9} {'worker peak':>12} {'worker growth':>14}"
        )
        lines = [f"Memory vs. size ({args.provider}, {args.workers} workers; RSS in MB)", head]
        for r in results:
            f = r.first
            wpeak = max(f.rss[w].peak_rss for w in r.worker_names)
            wgrowth = max(f.rss[w].end_rss - f.rss[w].start_rss for w in r.worker_names)
            total = f.run["counts"]["onoffice_newsletter_total"]
            lines.append(
                f"  {r.contacts:>8} {total:>7} {f.wall_s:>8.1f} {total / f.wall_s:>7.0f} "
                f"{r.second.wall_s:>8.1f} {writes(r.second.provider_requests):>7} "
                f"{f.rss['api'].peak_rss / MB:>9.1f} {wpeak / MB:>12.1f} {wgrowth / MB:>+14.1f}"
            )
        print("\n".join(lines))


def code_version() -> str:
    """The commit measured, and whether the connector's code differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "app",
                "providers",
                "onoffice_client",
                "migrations",
                "emulators",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head or 'unknown'}" + (" + uncommitted changes" if dirty else "")


def print_setup(args: argparse.Namespace, sizes: list[int]) -> None:
    rows = [
        ("sizes", ", ".join(str(s) for s in sizes)),
        ("provider", args.provider),
        ("workers", f"{args.workers} (WORKER_CONCURRENCY {args.worker_concurrency or 'default'})"),
        (
            "provider latency",
            f"{args.latency_ms:g} ms/request + {args.latency_per_item_us:g} µs/item",
        ),
        ("onOffice latency", f"{args.onoffice_latency_ms:g} ms/request"),
        ("database / redis", f"{args.db_name} / {redis_url(args)}"),
        ("machine", f"{psutil.cpu_count()} CPUs, Python {sys.version.split()[0]}"),
        ("code", code_version()),
    ]
    if args.provider == "brevo":
        rows.insert(4, ("brevo import processing", f"{args.brevo_import_delay_s:g} s"))
    print(table(rows, "Full-sync benchmark"))


# -------------------------------------------------------------------------------------------------
# Entry point
# -------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.full_sync", description=__doc__.split("\n\n")[0])
    p.add_argument("--contacts", type=int, default=10_000, help="onOffice addresses to seed")
    p.add_argument("--sizes", help="comma-separated sizes to run one after another")
    p.add_argument("--provider", choices=("mailchimp", "brevo"), default="mailchimp")
    p.add_argument("--workers", type=int, default=2, help="arq worker processes")
    p.add_argument("--worker-concurrency", type=int, default=0, help="WORKER_CONCURRENCY")
    p.add_argument("--latency-ms", type=float, default=50.0, help="per provider request")
    p.add_argument("--latency-per-item-us", type=float, default=0.0, help="per contact in bulk")
    p.add_argument("--onoffice-latency-ms", type=float, default=30.0, help="per onOffice request")
    p.add_argument("--brevo-import-delay-s", type=float, default=1.0, help="import processing")
    p.add_argument("--seed", type=int, default=7, help="address-book generator seed")
    p.add_argument("--db-name", default="connector_bench")
    p.add_argument(
        "--pg-admin-dsn",
        default=os.environ.get(
            "BENCH_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    p.add_argument("--redis-base", default="redis://127.0.0.1:6379")
    p.add_argument("--redis-db", type=int, default=5)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per sync run")
    p.add_argument("--sample-interval", type=float, default=0.5, help="RSS sampling, seconds")
    p.add_argument("--log-level", default="WARNING", help="LOG_LEVEL of the connector processes")
    p.add_argument("--keep-db", action="store_true", help="do not drop the database afterwards")
    p.add_argument("--keep-logs", action="store_true", help="keep the process logs")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", args.db_name):
        p.error("--db-name must be a plain PostgreSQL identifier")
    if args.db_name in ("postgres", "template0", "template1"):
        p.error("--db-name must not be a system database")
    return args


async def amain(args: argparse.Namespace, sizes: list[int], log_dir: Path) -> list[SizeResult]:
    results = []
    for size in sizes:
        results.append(await bench_size(args, size, log_dir))
    return results


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.contacts]
    signal.signal(signal.SIGTERM, _raise_interrupt)  # `kill` cleans up like Ctrl-C
    log_dir = Path(tempfile.mkdtemp(prefix="connector-bench-"))
    print_setup(args, sizes)
    ok = False
    try:
        results = asyncio.run(amain(args, sizes, log_dir))
        print_reports(args, results)
        ok = all(
            r.first.run["status"] == "completed" and r.second.run["status"] == "completed"
            for r in results
        )
    except KeyboardInterrupt:
        note("interrupted; processes stopped and database dropped")
        return 130
    except BenchError as exc:
        note(f"benchmark failed: {exc}")
        note(f"process logs: {log_dir}")
        return 1
    finally:
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
    if not ok or args.keep_logs:
        note(f"process logs: {log_dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
