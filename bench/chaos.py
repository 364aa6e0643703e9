"""Faults injected from the outside (issue 22): the production layout (API + two workers, Redis
without persistence) on a PostgreSQL cluster and a Redis of this benchmark's own (never the
shared services), against the emulators, each scenario on a fresh database:

| scenario | fault |
|---|---|
| sync-redis | Redis killed and started again during a full sync of `--addresses` |
| sync-postgres | PostgreSQL stopped (immediate) and started again during the full sync |
| sync-worker | the busiest worker `kill -9`ed during the full sync (a new one started) |
| hooks-postgres | PostgreSQL restarted during a burst of `--events` Mailchimp unsubscribes |
| hooks-redis | Redis restarted during the burst |
| hooks-api | the API `kill -9`ed during the burst (a new one started; senders retry) |

Per scenario: provider exact (Mailchimp's final state is what the consent rules say), onOffice
exact (exactly the expected addresses set to No, none written twice), counts exact (the run's
counts; for the burst: every acknowledged event applied once), lost, doubled (emails Mailchimp's
batch subscribe wrote more than once; onOffice addresses with more than one activity), the time
from the dependency's (or the process's) return to the next progress, and the processes that
exited by themselves.

    .venv/bin/python -m bench.chaos --addresses 20000 --events 2000 --port-base 18600
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.chaos_stack import Infra, Running, inject, log_dir_for, start_running
from bench.oracle import (
    INVALID_EMAILS,
    OPT_OUT_VALUES,
    count_mismatches,
    expected_outcome,
    person_key,
    provider_state_problems,
)
from bench.report import check, table
from bench.stack import BenchError, Stack, code_version, machine, note
from bench.webhooks import address_records, unsubscribe_form
from devkit.kit import deliver_until_acked

SYNC_FAULTS = {"sync-redis": "redis", "sync-postgres": "postgres", "sync-worker": "worker"}
HOOK_FAULTS = {"hooks-postgres": "postgres", "hooks-redis": "redis", "hooks-api": "api"}
SCENARIOS = [*SYNC_FAULTS, *HOOK_FAULTS]


@dataclass
class Result:
    scenario: str
    provider_exact: bool = False
    onoffice_exact: bool = False
    counts_exact: bool = False
    lost: int = 0
    doubled: int = 0
    recovery_s: float | None = None
    exited: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        exact = self.provider_exact and self.onoffice_exact and self.counts_exact
        recovered = self.recovery_s is not None and self.recovery_s <= 10
        return exact and not self.lost and not self.doubled and not self.exited and recovered


async def progress_after(
    running: Running, measure: Any, back: float, limit_s: float, complete: float | None = None
) -> float | None:
    """Seconds from `back` until `measure()` (a number that grows with progress, None when it
    cannot be read) first exceeds what it was at `back`, or reaches `complete` (all was done
    before the dependency came back: nothing waited); None if neither within limit_s."""
    start = None
    while time.monotonic() - back < limit_s:
        value = await measure()
        if value is not None:
            if complete is not None and value >= complete:
                return time.monotonic() - back
            if start is None:
                start = value
            elif value > start:
                return time.monotonic() - back
        await asyncio.sleep(0.1)
    return None


def active_yes_of_opted_out(records: list[dict[str, Any]]) -> set[int]:
    """The active Yes addresses the run must set to No (the oracle's `set_to_no`): people with
    a valid email, a Yes and an active No or Cancellation."""
    active = [a for a in records if str(a.get("Status", "1")) == "1"]
    opted_out = {
        person_key(a.get("Email"))
        for a in active
        if str(a.get("newsletter_aktiv")) in OPT_OUT_VALUES
    }
    return {
        int(a["id"])
        for a in active
        if str(a.get("newsletter_aktiv")) == "1"
        and person_key(a.get("Email")) in opted_out - INVALID_EMAILS
        and person_key(a.get("Email"))
    }


def active_changes(
    before: list[dict[str, Any]], after: list[dict[str, Any]], should_say_no: set[int]
) -> list[int]:
    """Active addresses whose newsletter value is not what the run must leave: No for
    `should_say_no`, unchanged for the others (archived addresses are outside the oracle)."""
    now = {int(a["id"]): str(a.get("newsletter_aktiv")) for a in after}
    return [
        int(a["id"])
        for a in before
        if str(a.get("Status", "1")) == "1"
        and now.get(int(a["id"]))
        != ("0" if int(a["id"]) in should_say_no else str(a.get("newsletter_aktiv")))
    ]


def batches(run: dict[str, Any]) -> int:
    return int((run.get("progress") or {}).get("batches_done", 0))


def ended(run: dict[str, Any]) -> bool:
    return run.get("status") in ("completed", "failed", "cancelled")


# -------------------------------------------------------------------------------------------------
# A full sync with a fault
# -------------------------------------------------------------------------------------------------


async def sync_scenario(name: str, infra: Infra, args: argparse.Namespace, logs: Path) -> Result:
    result = Result(name)
    stack = Stack(log_dir_for(logs, name))
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            r = await start_running(infra, args, stack, client, seed_addresses=args.addresses)
            records = (await client.get(f"{r.onoffice}/_control/state")).json()["addresses"]
            expected = expected_outcome(records)
            should_say_no = active_yes_of_opted_out(records)
            not_yes_before, _ = await r.onoffice_progress(1, args.addresses)
            started = time.monotonic()
            run_id = await r.start_sync()
            fault_at = max(1, expected.unique // 500 // 4)
            await r.wait_run(run_id, lambda run: batches(run) >= fault_at, args.timeout)
            note(f"[{name}] fault at {fault_at} batches")
            back = await inject(SYNC_FAULTS[name], infra, r)

            async def measure() -> float | None:
                run = await r.run(run_id)
                if not run:
                    return None
                p = run["progress"]
                done = run["status"] in ("completed", "failed")
                return float(p["batches_done"] + p["addresses_read"] + (10**9 if done else 0))

            result.recovery_s = await progress_after(r, measure, back, args.timeout)
            run = await r.wait_run(run_id, ended, args.timeout - (time.monotonic() - started))
            result.wall_s = time.monotonic() - started
            note(f"[{name}] run {run.get('status')} after {result.wall_s:.0f} s")
            problems = await provider_state_problems(client, "mailchimp", r.mailchimp, expected)
            result.provider_exact = run.get("status") == "completed" and not problems
            result.lost = sum(1 for p in problems if p.endswith("found None"))
            result.notes += problems[:5]
            counts = run.get("counts") or {}
            mismatches = count_mismatches(counts, expected) if counts else ["no counts"]
            if counts and (counts["created"], counts["updated"]) != (expected.unique, 0):
                mismatches.append(f"created {counts['created']} updated {counts['updated']}")
            result.counts_exact = not mismatches
            result.notes += mismatches
            # The No written onto the opted-out people's other Yes addresses may follow the end.
            want = not_yes_before + expected.set_to_no
            for _ in range(60):
                not_yes, twice = await r.onoffice_progress(1, args.addresses)
                if not_yes >= want:
                    break
                await asyncio.sleep(1)
            await asyncio.sleep(2)
            after = (await client.get(f"{r.onoffice}/_control/state")).json()["addresses"]
            wrong = active_changes(records, after, should_say_no)
            not_yes, twice = await r.onoffice_progress(1, args.addresses)
            stats = await r.mailchimp_stats()
            result.onoffice_exact = not wrong and twice == 0
            if not result.onoffice_exact:
                result.notes.append(
                    f"onOffice: {len(wrong)} active addresses not as expected (e.g. "
                    f"{wrong[:3]}); {twice} addresses with more than one activity"
                )
            result.doubled = int(stats.get("batch_writes_repeated", 0)) + twice
            result.exited = r.exited()
    finally:
        stack.stop()
    return result


# -------------------------------------------------------------------------------------------------
# A burst of webhooks with a fault
# -------------------------------------------------------------------------------------------------


async def hook_scenario(name: str, infra: Infra, args: argparse.Namespace, logs: Path) -> Result:
    result = Result(name)
    stack = Stack(log_dir_for(logs, name))
    n = args.events
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            r = await start_running(infra, args, stack, client, records=address_records(n))
            await r.wait_run(await r.start_sync(), ended, args.timeout)
            lists = (await client.get(f"{r.mailchimp}/_control/lists")).json()["lists"]
            (hook,) = next(x for x in lists if x["id"] == r.list_id)["webhooks"]
            await asyncio.sleep(6)  # past the consent rule's tie after the sync's writes
            fired = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
            await client.post(
                f"{r.mailchimp}/_control/lists/{r.list_id}/members/actions",
                json={
                    "action": "unsubscribe",
                    "emails": [f"person{i}@example.de" for i in range(1, n + 1)],
                    "at": fired.replace(" ", "T") + "+00:00",
                },
            )
            bodies = [
                urlencode(unsubscribe_form(i, r.list_id, fired)).encode() for i in range(1, n + 1)
            ]
            started = time.monotonic()
            sending = asyncio.ensure_future(
                deliver_until_acked(hook["url"], bodies, args.senders, args.timeout)
            )
            await asyncio.sleep(1.0)
            note(f"[{name}] fault during the burst")
            back = await inject(HOOK_FAULTS[name], infra, r)

            async def measure() -> float | None:
                return float((await r.onoffice_progress(1, n))[0])

            result.recovery_s = await progress_after(r, measure, back, args.timeout, complete=n)
            acked = await sending
            applied, twice = 0, 0
            while time.monotonic() - started < args.timeout:
                applied, twice = await r.onoffice_progress(1, n)
                if applied >= n:
                    break
                await asyncio.sleep(0.5)
            result.wall_s = time.monotonic() - started
            await asyncio.sleep(3)  # late duplicates would show now
            applied, twice = await r.onoffice_progress(1, n)
            note(f"[{name}] {acked} acknowledged, {applied} applied after {result.wall_s:.0f} s")
            result.lost = max(0, acked - applied)
            result.doubled = twice
            result.onoffice_exact = applied == n and twice == 0
            members = (
                await client.get(f"{r.mailchimp}/_control/lists/{r.list_id}/members")
            ).json()["members"]
            result.provider_exact = sum(m["status"] == "unsubscribed" for m in members) == n
            rows = await r.sql("select status, count(*) as n from inbound_event group by status")
            by_status = {str(row["status"]): int(row["n"]) for row in rows}
            # Each person's unsubscribe applied once (a repeat of an applied one is ignored).
            result.counts_exact = acked == n and by_status.get("applied") == n
            result.counts_exact &= set(by_status) <= {"applied", "ignored"}
            if not result.counts_exact:
                result.notes.append(f"acknowledged {acked}, events {by_status}")
            result.exited = r.exited()
    finally:
        stack.stop()
    return result


# -------------------------------------------------------------------------------------------------
# Report
# -------------------------------------------------------------------------------------------------


def report(args: argparse.Namespace, results: list[Result]) -> None:
    print(f"# chaos: {args.addresses} addresses, {args.events} events; {code_version()}")
    print(f"# {machine()}")
    header = "| scenario | provider exact | onOffice exact | counts exact | lost | doubled |"
    print(header + " recovery (s) | exited | wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        rec = f"{r.recovery_s:.1f}" if r.recovery_s is not None else "none"
        print(
            f"| {r.scenario} | {check(r.provider_exact)} | {check(r.onoffice_exact)} | "
            f"{check(r.counts_exact)} | {r.lost} | {r.doubled} | {rec} | "
            f"{', '.join(r.exited) or 'none'} | {r.wall_s:.0f} |"
        )
    for r in results:
        for text in r.notes[:5]:
            print(f"  {r.scenario}: {text}")
    print(table([("all targets met", check(all(r.ok for r in results)))], "summary"))
    print(json.dumps({"chaos": [asdict(r) for r in results]}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--addresses", type=int, default=20000)
    p.add_argument("--events", type=int, default=2000)
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--port-base", type=int, default=0, help="5 ports from here (0: free ports)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--senders", type=int, default=20)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--mailchimp-latency-s", type=float, default=0.1)
    p.add_argument("--mailchimp-per-item-s", type=float, default=0.001)
    p.add_argument("--onoffice-latency-s", type=float, default=0.05)
    p.add_argument("--log-level", default="WARNING")
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}")
    return args


async def amain(args: argparse.Namespace, logs: Path) -> list[Result]:
    infra = await asyncio.to_thread(Infra.start, args.port_base)
    results = []
    try:
        for name in args.scenarios.split(","):
            note(f"[{name}] starting")
            scenario = sync_scenario if name in SYNC_FAULTS else hook_scenario
            results.append(await scenario(name, infra, args, logs))
    finally:
        await asyncio.to_thread(infra.close)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs = Path(tempfile.mkdtemp(prefix="chaos-logs-"))
    try:
        results = asyncio.run(amain(args, logs))
    except BenchError as exc:
        note(f"failed: {exc} (logs in {logs})")
        return 2
    finally:
        if not args.keep_logs and "results" in locals():
            shutil.rmtree(logs, ignore_errors=True)
    report(args, results)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
