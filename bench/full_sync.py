"""Full-sync benchmark: the real connector (API + arq workers) against the emulators, end to end.

Every component runs as its own process, like in production: the onOffice, Mailchimp and Brevo
emulators (with the latency of `--profile`), the connector API (`app.cli serve`) and W arq
workers (`app.cli worker`), on a freshly created and migrated PostgreSQL database and a flushed
Redis db. The script activates a tenant through the signed marketplace flow, opens a session,
saves the connection, starts a full sync, polls it to the end while sampling the RSS of the API
and of every worker, then starts a second (no-op) sync. It prints tables, the lower bound of
each run under the latency model and the providers' limits (bench/model.py), and one JSON line.

    .venv/bin/python -m bench.full_sync --contacts 10000 --provider mailchimp --profile realistic
    .venv/bin/python -m bench.full_sync --sizes 10000,50000 --provider mailchimp --profile zero
    .venv/bin/python -m bench.full_sync --baseline per-contact --provider mailchimp

Process stack: bench/stack.py; sampling: bench/sampler.py; figures: bench/report.py.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.contacts.values import Language, check_email, contact_from_address
from bench.model import PROFILES, Expectation, LatencyProfile, bound_for, profile_from_args
from bench.oracle import count_mismatches, expected_outcome, provider_state_problems
from bench.report import RunResult, SizeResult, json_line, print_reports, print_setup, table
from bench.sampler import ProviderCounter, Sampler, onoffice_counts
from bench.stack import (
    BREVO_KEY,
    MAILCHIMP_KEY,
    BenchError,
    Proc,
    Stack,
    activate_and_connect,
    add_worker_args,
    bench_ports,
    latency_options,
    launch_connector,
    note,
    on_fresh_stack,
    parse_bench_args,
    raise_interrupt,
    start_emulator,
)
from emulators.onoffice import DEFAULT_SECRET, DEFAULT_TOKEN
from onoffice_client.client import OnOfficeClient
from providers.base import NewsletterProvider
from providers.brevo.client import BrevoClient
from providers.mailchimp.client import MailchimpClient

MAX_PROBLEMS = 10  # provider-state differences kept per sync for the report

# -------------------------------------------------------------------------------------------------
# One sync, timed
# -------------------------------------------------------------------------------------------------


def _progress(body: dict[str, Any]) -> str:
    p = body.get("progress") or {}
    return (
        f"phase={p.get('phase')} read={p.get('addresses_read')} "
        f"batches={p.get('batches_done')}/{p.get('batches_total')}"
    )


async def started_and_done(
    client: httpx.AsyncClient,
    api: str,
    headers: dict[str, str],
    sampler: Sampler,
    start: dict[str, Any],
    *,
    label: str,
    limit_s: float,
    progress: Callable[[dict[str, Any]], str],
    marks: dict[str, float] | None = None,
) -> tuple[dict[str, Any], float]:
    """Start a run (`POST /api/v1/syncs` with `start`: a preview with `{"dry_run": true}`) with
    `sampler` sampling, and poll the path it answers until it has completed or failed: its last
    answer and the seconds it took. A process that dies or a run over `limit_s` fails the bench.
    `marks`: when each phase, the end of the onOffice read and the last batch were first seen
    (seconds after the start: the critical path).
    """
    sampler.start()
    started = time.monotonic()
    response = await client.post(f"{api}/api/v1/syncs", headers=headers, json=start)
    if response.status_code != 202:
        await sampler.stop()
        raise BenchError(f"starting {label} failed: {response.status_code} {response.text}")
    answer = response.json()
    path = answer.get("preview") or f"/api/v1/syncs/{answer['id']}"
    last_note = 0.0
    while True:
        body: dict[str, Any] = (await client.get(f"{api}{path}", headers=headers)).json()
        now = time.monotonic()
        if marks is not None:
            p = body.get("progress") or {}
            seen = [str(p.get("phase"))]
            if p.get("reading_done"):
                seen.append("read")
                if p.get("batches_done") == p.get("batches_total"):
                    seen.append("sent")
            for mark in seen:
                marks.setdefault(mark, now - started)
        if body.get("status") in ("completed", "failed"):
            return body, now - started
        for proc in sampler.procs:
            if not proc.alive():
                await sampler.stop()
                raise BenchError(f"{proc.name} died during the run:\n{proc.tail()}")
        if now - started > limit_s:
            await sampler.stop()
            raise BenchError(
                f"{label}: {path} did not finish within {limit_s:.0f} s; {progress(body)}"
            )
        if now - last_note >= 10:
            note(f"  {label}: {now - started:6.1f} s  {progress(body)}")
            last_note = now
        await asyncio.sleep(0.25)


async def timed_sync(
    client: httpx.AsyncClient,
    started: Connected,
    providers: ProviderCounter,
    *,
    label: str,
    limit_s: float,
    sample_interval: float,
) -> RunResult:
    """One sync of the connected stack, `started.measured` sampled every `sample_interval`."""
    api, onoffice = started.api, started.emu.onoffice
    headers = {"Authorization": f"Bearer {started.token}"}
    sampler = Sampler(started.measured, sample_interval)
    await providers.reset_mailchimp_peaks()
    prov0, extra0 = await providers.snapshot()
    oo_http0, oo_actions0 = await onoffice_counts(client, onoffice)
    marks: dict[str, float] = {}
    body, wall = await started_and_done(
        client,
        api,
        headers,
        sampler,
        {},
        label=label,
        limit_s=limit_s,
        progress=_progress,
        marks=marks,
    )
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
        marks=marks,
    )


# -------------------------------------------------------------------------------------------------
# One benchmark size
# -------------------------------------------------------------------------------------------------


@dataclass
class Emulators:
    onoffice: str
    provider: str
    onoffice_proc: Proc
    provider_proc: Proc


async def start_emulators(
    args: argparse.Namespace,
    profile: LatencyProfile,
    stack: Stack,
    client: httpx.AsyncClient,
    contacts: int,
    suffix: str = "",
    ports: Sequence[int] = (0, 0),
) -> Emulators:
    """onOffice seeded with `contacts` addresses and the provider, on `ports` (0: free ones)."""
    provider = args.provider
    seeded = ["--seed-addresses", str(contacts), "--seed", str(args.seed)]
    oo = start_emulator(stack, "onoffice", ports[0], seeded, name=f"onoffice{suffix}")
    per_item_s = profile.provider_per_item_us / 1e6 if provider == "mailchimp" else 0.0
    options = latency_options(profile.provider_ms / 1000, per_item_s)
    prov = start_emulator(stack, provider, ports[1], options, name=f"{provider}{suffix}")
    await prov.ready(client)
    if provider == "brevo":
        await client.post(
            f"{prov.url}/_control/config",
            json={
                "latency_per_item": profile.brevo_per_item_us / 1e6,
                "import_delay": profile.brevo_import_s,
            },
        )
    await oo.ready(client, wait_s=300)
    await client.post(f"{oo.url}/_control/latency", json={"seconds": profile.onoffice_ms / 1000})
    return Emulators(oo.url, prov.url, oo.proc, prov.proc)


@dataclass
class Connected:
    """The emulators, the expected outcome of their data, and a connected connector."""

    emu: Emulators
    expected: Expectation
    api: str
    api_proc: Proc
    workers: list[Proc]
    token: str

    @property
    def measured(self) -> list[Proc]:
        """The processes a sync's sampler follows: the API, the workers, the emulators."""
        return [self.api_proc, *self.workers, self.emu.onoffice_proc, self.emu.provider_proc]


async def start_connected(
    args: argparse.Namespace,
    profile: LatencyProfile,
    stack: Stack,
    client: httpx.AsyncClient,
    contacts: int,
    extra: dict[str, str],
) -> Connected:
    """The emulators seeded with `contacts` addresses, the API and the workers (environment
    `extra` on top), a tenant activated and its connection saved; on the ports from
    `--port-base` (onOffice, the provider, the API) where the script has it, else free ones."""
    provider = args.provider
    ports = bench_ports(args, 3)
    note(f"[{contacts}] starting emulators (onOffice seeded with {contacts} addresses)")
    emu = await start_emulators(args, profile, stack, client, contacts, ports=ports[:2])
    records = (await client.get(f"{emu.onoffice}/_control/state")).json()["addresses"]
    expected = expected_outcome(records)
    del records
    note(f"[{contacts}] starting the connector API and {args.workers} worker(s)")
    connector = await launch_connector(
        stack, client, args, emu.onoffice, emu.provider, port=ports[2], **extra
    )
    key = MAILCHIMP_KEY if provider == "mailchimp" else BREVO_KEY
    token, _ = await activate_and_connect(client, connector.url, emu.onoffice, provider, key)
    await asyncio.sleep(1.0)  # let the workers finish start-up before the baseline RSS sample
    return Connected(emu, expected, connector.url, connector.api, connector.workers, token)


async def bench_size(
    args: argparse.Namespace, profile: LatencyProfile, contacts: int, log_dir: Path
) -> SizeResult:
    setup_started = time.monotonic()
    return await on_fresh_stack(
        args,
        log_dir,
        lambda stack, client: _bench_size(args, profile, contacts, stack, client, setup_started),
    )


async def _bench_size(
    args: argparse.Namespace,
    profile: LatencyProfile,
    contacts: int,
    stack: Stack,
    client: httpx.AsyncClient,
    setup_started: float,
) -> SizeResult:
    provider = args.provider
    extra = {
        "ONOFFICE_READ_CONCURRENCY": str(profile.onoffice_concurrency),
        # The product's default unless `--opt-out-recheck-s` is given (the default, 0, asks
        # before every batch: four more reads per 500 contacts).
        **(
            {"OPT_OUT_RECHECK_S": str(args.opt_out_recheck_s)}
            if args.opt_out_recheck_s is not None
            else {}
        ),
        "BREVO_IMPORT_BATCH_SIZE": str(args.import_batch),
        # The Brevo emulator reaches the local API: imports are confirmed through notifyUrl
        # (`--import-notify off` measures the polling fallback).
        "IMPORT_NOTIFY": args.import_notify,
    }
    started = await start_connected(args, profile, stack, client, contacts, extra)
    emu, expected, workers = started.emu, started.expected, started.workers
    setup_s = time.monotonic() - setup_started

    counter = ProviderCounter(client, provider, emu.provider)
    results: list[RunResult] = []
    exact: list[bool] = []
    problems: list[str] = []
    interval = args.sample_interval
    for label in ("sync 1", "sync 2"):
        wanted = expected if label == "sync 1" else expected.after_first()
        note(f"[{contacts}] {label} ({wanted.total} newsletter=Yes addresses)")
        result = await timed_sync(
            client, started, counter, label=label, limit_s=args.timeout, sample_interval=interval
        )
        note(f"[{contacts}] {label} {result.run['status']} in {result.wall_s:.1f} s")
        found = await provider_state_problems(client, provider, emu.provider, expected)
        problems += [f"{label}: {p}" for p in found[:MAX_PROBLEMS]]
        if len(found) > MAX_PROBLEMS:
            problems.append(f"{label}: ... {len(found)} differences in all")
        completed = result.run["status"] == "completed"
        mismatches = count_mismatches(result.run["counts"], wanted)
        problems += [f"{label}: {m}" for m in mismatches]
        exact.append(completed and not found and not mismatches)
        results.append(result)
    bounds = (
        bound_for(provider, profile, expected, members_before=0, import_batch=args.import_batch),
        bound_for(
            provider,
            profile,
            expected,
            members_before=expected.unique,
            tags_before=len(expected.tag_members()),
            import_batch=args.import_batch,
        ),
    )
    return SizeResult(
        contacts,
        expected,
        results[0],
        results[1],
        [w.name for w in workers],
        setup_s,
        bounds=bounds,
        exact=(exact[0], exact[1]),
        state_problems=problems,
    )


# -------------------------------------------------------------------------------------------------
# Baseline: one provider request per contact, the way peers sync
# -------------------------------------------------------------------------------------------------


async def per_contact_baseline(
    args: argparse.Namespace, profile: LatencyProfile, contacts: int, log_dir: Path
) -> tuple[float, int]:
    """Reads onOffice page by page and sends every contact on its own (`upsert_contact`, one
    request each, one after another), against fresh emulators with the same data and latency.
    Returns (seconds, contacts sent)."""
    stack = Stack(log_dir)
    try:
        async with httpx.AsyncClient(timeout=120) as http:
            emu = await start_emulators(args, profile, stack, http, contacts, suffix="-baseline")
            client: NewsletterProvider
            if args.provider == "mailchimp":
                client = MailchimpClient(
                    api_key=MAILCHIMP_KEY, base_url_template=f"{emu.provider}/3.0", http=http
                )
            else:
                client = BrevoClient(api_key=BREVO_KEY, base_url=f"{emu.provider}/v3", http=http)
            await client.check_key()
            list_id = (await client.ensure_list()).id
            mapping = await client.ensure_fields(list_id)
            onoffice = OnOfficeClient(
                api_url=f"{emu.onoffice}/api/stable/api.php",
                token=DEFAULT_TOKEN,
                secret=DEFAULT_SECRET,
                http=http,
            )
            started = time.monotonic()
            seen: set[str] = set()
            async for page in onoffice.iter_newsletter_addresses():
                for address in page:
                    checked = check_email(address.email)
                    if checked.problem is not None or checked.email in seen:
                        continue
                    seen.add(checked.email)
                    contact = contact_from_address(address, checked.email, Language.de)
                    await client.upsert_contact(list_id, contact, mapping)
            return time.monotonic() - started, len(seen)
    finally:
        stack.stop()


# -------------------------------------------------------------------------------------------------
# Entry point
# -------------------------------------------------------------------------------------------------


def add_run_args(p: argparse.ArgumentParser) -> None:
    """The provider, the workers and the latency profile (shared with bench/preview.py)."""
    p.add_argument("--provider", choices=("mailchimp", "brevo"), default="mailchimp")
    add_worker_args(p)
    p.add_argument("--profile", choices=sorted(PROFILES), default="realistic")
    p.add_argument("--latency-ms", type=float, help="per provider request (overrides profile)")
    p.add_argument("--latency-per-item-us", type=float, help="per contact in a bulk body/page")
    p.add_argument("--onoffice-latency-ms", type=float, help="per onOffice request")
    p.add_argument("--brevo-import-delay-s", type=float, help="Brevo import processing")
    p.add_argument(
        "--onoffice-concurrency",
        type=int,
        default=4,
        help="onOffice reads in flight: passed as ONOFFICE_READ_CONCURRENCY, used by the bound",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.full_sync", description=__doc__.split("\n\n")[0])
    p.add_argument("--contacts", type=int, default=None, help="onOffice addresses to seed")
    p.add_argument("--sizes", help="comma-separated sizes to run one after another")
    add_run_args(p)
    p.add_argument("--import-batch", type=int, default=10_000, help="BREVO_IMPORT_BATCH_SIZE")
    p.add_argument(
        "--opt-out-recheck-s",
        type=float,
        default=None,
        help="OPT_OUT_RECHECK_S of the connector (default: the product's own default)",
    )
    p.add_argument(
        "--import-notify",
        choices=("on", "off"),
        default="on",
        help="IMPORT_NOTIFY: Brevo imports confirmed through notifyUrl, or polled",
    )
    p.add_argument(
        "--baseline",
        choices=("per-contact",),
        help="also run the same data with one provider request per contact (default 5,000)",
    )
    p.add_argument("--seed", type=int, default=7, help="address-book generator seed")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per sync run")
    p.add_argument("--sample-interval", type=float, default=0.5, help="RSS sampling, seconds")
    args = parse_bench_args(p, argv, "connector_bench_full_sync")
    if args.contacts is None:
        args.contacts = 5_000 if args.baseline else 10_000
    return args


async def amain(
    args: argparse.Namespace, profile: LatencyProfile, sizes: list[int], log_dir: Path
) -> list[SizeResult]:
    results = [await bench_size(args, profile, size, log_dir) for size in sizes]
    print_reports(args, results)
    for r in results:
        print(json_line(r))
    if args.baseline:
        note(f"[{args.contacts}] baseline: one provider request per contact")
        seconds, sent = await per_contact_baseline(args, profile, args.contacts, log_dir)
        connector = next(r for r in results if r.contacts == args.contacts).first.wall_s
        speedup = seconds / connector if connector else 0.0
        rows = [
            ("contacts seeded", str(args.contacts)),
            ("contacts sent one by one", str(sent)),
            ("baseline wall time", f"{seconds:.1f} s"),
            ("connector first sync", f"{connector:.1f} s"),
            ("connector is faster by", f"{speedup:.1f} x  (target: at least 50 x)"),
        ]
        print()
        print(table(rows, f"Baseline: one request per contact ({args.provider})"))
        print(
            '{"baseline": "per-contact", '
            f'"contacts": {args.contacts}, "baseline_wall_s": {seconds:.2f}, '
            f'"connector_wall_s": {connector:.2f}, "speedup": {speedup:.2f}}}'
        )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = profile_from_args(args)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.contacts]
    signal.signal(signal.SIGTERM, raise_interrupt)  # `kill` cleans up like Ctrl-C
    log_dir = Path(tempfile.mkdtemp(prefix="connector-bench-"))
    print_setup(args, sizes, profile)
    ok = False
    try:
        results = asyncio.run(amain(args, profile, sizes, log_dir))
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
