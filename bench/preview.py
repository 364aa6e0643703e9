"""Preview benchmark: a dry-run preview (`POST /api/v1/syncs {"dry_run": true}`) of a large
address book, end to end, on the full sync benchmark's process stack (bench/full_sync.py,
bench/stack.py): the emulators with the latency of `--profile`, the connector API and W arq
workers on a fresh PostgreSQL database. It times the preview from the request to `completed`,
samples the RSS of the API and every worker, and checks the preview's counts against the
oracle (bench/oracle.py); `--then-sync` starts a real run right after it and compares every
count. Prints a table with the lower bound (bench/model.py `preview_bound`) and one JSON line.

    .venv/bin/python -m bench.preview --contacts 100000 --provider mailchimp --port-base 18750
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from bench.full_sync import add_run_args, start_connected, started_and_done, timed_sync
from bench.model import preview_bound, profile_from_args
from bench.oracle import count_mismatches
from bench.report import run_benchmark, table
from bench.sampler import MB, ProviderCounter, Sampler, onoffice_counts
from bench.stack import BenchError, Stack, note, on_fresh_stack, parse_bench_args

# Counts a preview and the run after it must agree on (created/updated: Brevo tells neither).
SAME = (
    "onoffice_newsletter_total",
    "synced",
    "unchanged",
    "duplicates",
    "invalid_emails",
    "rejected",
    "opted_out",
    "pending_optin",
    "bounced",
    "archived",
    "unsubscribed",
    "held_unsubscribes",
)


async def bench(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    return await on_fresh_stack(args, log_dir, lambda stack, client: _bench(args, stack, client))


async def _bench(
    args: argparse.Namespace, stack: Stack, client: httpx.AsyncClient
) -> dict[str, Any]:
    profile = profile_from_args(args)
    contacts, provider = args.contacts, args.provider
    extra = {
        "ONOFFICE_READ_CONCURRENCY": str(profile.onoffice_concurrency),
        "WORKER_JOB_TIMEOUT_S": str(int(args.timeout)),
    }
    started = await start_connected(args, profile, stack, client, contacts, extra)
    emu, expected, api, token = started.emu, started.expected, started.api, started.token
    api_proc, workers = started.api_proc, started.workers
    counter = ProviderCounter(client, provider, emu.provider)
    provider0, _ = await counter.snapshot()
    onoffice0, actions0 = await onoffice_counts(client, emu.onoffice)
    sampler = Sampler(started.measured, args.sample_interval)
    note(f"[{contacts}] preview ({expected.total} newsletter=Yes addresses)")
    body, wall = await started_and_done(
        client,
        api,
        {"Authorization": f"Bearer {token}"},
        sampler,
        {"dry_run": True},
        label="preview",
        limit_s=args.timeout,
        progress=lambda body: f"status={body.get('status')}",
    )
    rss = await sampler.stop()
    provider1, _ = await counter.snapshot()
    onoffice1, actions = await onoffice_counts(client, emu.onoffice)
    if body["status"] != "completed":
        raise BenchError(f"the preview failed: {body.get('error')}")
    counts: dict[str, Any] = body["counts"]
    # A preview reconciles nothing (no provider count after it); the sum is still checked.
    problems = count_mismatches(counts | {"reconciled": True}, expected)
    writes = sum(v for k, v in (actions - actions0).items() if k.startswith(("modify", "create")))
    bound = preview_bound(provider, profile, expected, members_before=0)
    result: dict[str, Any] = {
        "contacts": contacts,
        "newsletter_yes": expected.total,
        "wall_s": round(wall, 2),
        "lower_bound_s": round(bound.lower_bound_s, 2),
        "lower_bound_ratio": round(wall / bound.lower_bound_s, 2) if bound.lower_bound_s else None,
        "worker_peak_rss_mb": round(max(rss[w.name].peak_rss for w in workers) / MB, 1),
        "worker_rss_growth_mb": round(
            max(rss[w.name].peak_rss - rss[w.name].start_rss for w in workers) / MB, 1
        ),
        "api_peak_rss_mb": round(rss[api_proc.name].peak_rss / MB, 1),
        # CPU seconds of the workers while the preview ran (how much of the wall is decisions).
        "worker_cpu_s": round(sum(rss[w.name].cpu_s for w in workers), 1),
        # ... and of the onOffice emulator (filtering the whole book for every page it serves).
        "onoffice_emulator_cpu_s": round(rss["onoffice"].cpu_s, 1),
        "provider_calls": sum((provider1 - provider0).values()),
        "onoffice_calls": onoffice1 - onoffice0,
        "onoffice_writes": writes,
        "counts_exact": not problems,
        "problems": problems,
        "counts": counts,
    }
    if args.then_sync:
        note(f"[{contacts}] the real run right after the preview")
        run = await timed_sync(
            client,
            started,
            counter,
            label="sync",
            limit_s=args.timeout,
            sample_interval=args.sample_interval,
        )
        got = run.run["counts"]
        result["sync_wall_s"] = round(run.wall_s, 2)
        result["preview_equals_run"] = [k for k in SAME if counts.get(k) != got.get(k)] == []
        result["differences"] = {
            k: (counts.get(k), got.get(k)) for k in SAME if counts.get(k) != got.get(k)
        }
    return result


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    rows = [
        ("addresses seeded / newsletter Yes", f"{r['contacts']} / {r['newsletter_yes']}"),
        ("preview wall time", f"{r['wall_s']:.1f} s"),
        ("lower bound (reads only)", f"{r['lower_bound_s']:.1f} s"),
        ("wall / lower bound", str(r["lower_bound_ratio"])),
        (
            "worker peak RSS (growth)",
            f"{r['worker_peak_rss_mb']} MB (+{r['worker_rss_growth_mb']})",
        ),
        ("API peak RSS", f"{r['api_peak_rss_mb']} MB"),
        ("workers' CPU during the preview", f"{r['worker_cpu_s']} s"),
        ("onOffice emulator's CPU", f"{r['onoffice_emulator_cpu_s']} s"),
        ("provider / onOffice calls", f"{r['provider_calls']} / {r['onoffice_calls']}"),
        ("writes to onOffice", str(r["onoffice_writes"])),
        ("counts = oracle", "yes" if r["counts_exact"] else f"NO: {r['problems']}"),
    ]
    if "sync_wall_s" in r:
        rows += [
            ("real run right after", f"{r['sync_wall_s']:.1f} s"),
            ("preview counts = run counts", "yes" if r["preview_equals_run"] else "NO"),
        ]
        rows += [(f"  {k}", f"preview {a}, run {b}") for k, (a, b) in r["differences"].items()]
    print()
    print(table(rows, f"Preview (dry run) of {r['contacts']} addresses, {args.provider}"))
    print(json.dumps({k: v for k, v in r.items() if k != "counts"}))
    if not r["counts_exact"] or r["onoffice_writes"] or not r.get("preview_equals_run", True):
        raise BenchError("the preview's figures are wrong (see the table)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.preview", description=__doc__.split("\n\n")[0])
    p.add_argument("--contacts", type=int, default=100_000, help="onOffice addresses to seed")
    add_run_args(p)
    p.add_argument("--seed", type=int, default=7, help="address-book generator seed")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds (also WORKER_JOB_TIMEOUT_S)"
    )
    p.add_argument("--sample-interval", type=float, default=0.5, help="RSS sampling, seconds")
    p.add_argument("--then-sync", action="store_true", help="a real run after it: same counts?")
    p.add_argument("--port-base", type=int, default=0, help="3 ports from here (0: free ports)")
    return parse_bench_args(p, argv, "connector_bench_preview")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [
        ("addresses", str(args.contacts)),
        ("provider", args.provider),
        ("latency", profile_from_args(args).describe()),
    ]
    return run_benchmark(
        args, "Preview benchmark (dry run)", rows, "connector-bench-preview-", bench, report
    )


if __name__ == "__main__":
    sys.exit(main())
