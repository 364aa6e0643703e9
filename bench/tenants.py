"""Many-tenants benchmark (the marketplace case): `--tenants` small tenants poll for changes and
receive provider webhooks while one big tenant runs a full sync of `--big` addresses.

One process per component, as in bench/full_sync.py. One onOffice emulator hosts every tenant,
each customer reading only its own address range; the small tenants use Brevo (one emulator
account each, a few addresses, synced first), the big tenant Mailchimp. Measurement rounds run
every `--round-s` seconds, first `--quiet-rounds` rounds without the big sync, then rounds while
it runs (at most `--max-rounds`). In each round every small tenant
- asks for a poll (`POST /api/v1/changes/poll`): the **poll lag** is the time until the onOffice
  emulator sees that tenant read by modification time;
- gets one Brevo `unsubscribed` webhook for one of its addresses: the **apply lag** is the time
  from the acknowledgement until onOffice has the "unsubscribed" activity on that address.
The report compares the rounds before and during the big sync (p50/p99/max), per tenant and
over all, and says whether the big sync delayed the others (target: p99 apply lag ≤ 5 s).

    .venv/bin/python -m bench.tenants --tenants 200 --big 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.model import PROFILES
from bench.report import run_benchmark, table
from bench.stack import (
    MAILCHIMP_KEY,
    BenchError,
    Stack,
    Tenant,
    activate_and_connect,
    add_worker_args,
    latency_options,
    launch_connector,
    note,
    on_fresh_stack,
    parse_bench_args,
    start_emulator,
)

SMALL_BASE = 10_000_000  # small tenant n owns the ids SMALL_BASE + n * 1000 + 1 ...


@dataclass
class Small:
    n: int
    tenant: Tenant
    brevo_key: str
    session: str = ""
    hook_url: str = ""
    hook_token: str = ""
    list_id: int = 0
    next_address: int = 0

    def address_id(self, k: int) -> int:
        return SMALL_BASE + self.n * 1000 + 1 + k

    def email(self, k: int) -> str:
        return f"t{self.n}-{k}@example.de"


@dataclass
class Lags:
    poll: dict[int, list[float]] = field(default_factory=dict)  # tenant -> lags (s)
    apply: list[float] = field(default_factory=list)
    apply_from_send: list[float] = field(default_factory=list)  # from sending the webhook
    ack: list[float] = field(default_factory=list)  # the webhook's acknowledgement latency
    poll_missing: int = 0
    apply_missing: int = 0

    def all_poll(self) -> list[float]:
        return [x for v in self.poll.values() for x in v]


def q(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 2)


def small_records(tenants: int, per_tenant: int) -> list[dict[str, Any]]:
    records = []
    for n in range(1, tenants + 1):
        for k in range(per_tenant):
            i = SMALL_BASE + n * 1000 + 1 + k
            records.append(
                {
                    "id": i,
                    "KdNr": i,
                    "Anrede": "Herr",
                    "Vorname": "Max",
                    "Name": f"T{n}",
                    "Email": f"t{n}-{k}@example.de",
                    "newsletter_aktiv": "1",
                    "Status": 1,
                    "Aenderung": "2025-01-01 00:00:00",
                }
            )
    return records


async def wait_runs(
    client: httpx.AsyncClient, api: str, runs: list[tuple[str, str]], limit_s: float
) -> list[dict[str, Any]]:
    """Poll (session, run id) pairs until each completed or failed."""
    deadline = time.monotonic() + limit_s
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(runs):
        for session, run_id in runs:
            if run_id in done:
                continue
            headers = {"Authorization": f"Bearer {session}"}
            body = (await client.get(f"{api}/api/v1/syncs/{run_id}", headers=headers)).json()
            if body["status"] in ("completed", "failed"):
                done[run_id] = body
        if time.monotonic() > deadline:
            raise BenchError(f"{len(runs) - len(done)} syncs did not finish in {limit_s:.0f} s")
        await asyncio.sleep(1.0)
    return [done[run_id] for _, run_id in runs]


async def measure_round(
    client: httpx.AsyncClient,
    api: str,
    onoffice: str,
    brevo: str,
    smalls: list[Small],
    wait_s: float,
) -> Lags:
    """One round: a poll request and a webhook per small tenant, then the lags observed.

    Both lags end at a time the onOffice emulator recorded itself (the read by modification
    time, the activity's creation), so how often this loop looks does not change them; it
    reads only what is new (`/_control/activity-log?after=`, `change-reads?since=`), so
    looking costs the emulator almost nothing."""
    cursor = (await client.get(f"{onoffice}/_control/activity-log?after=0")).json()["next"]
    round_start = time.time()
    asked: dict[int, float] = {}
    acked: dict[int, tuple[float, float, int]] = {}  # tenant -> (sent, acknowledged, address)

    async def one(s: Small) -> None:
        headers = {"Authorization": f"Bearer {s.session}"}
        asked[s.n] = time.time()
        await _post(client, f"{api}/api/v1/changes/poll", headers=headers)
        k = s.next_address
        s.next_address += 1
        event = {
            "event": "unsubscribed",
            "email": s.email(k),
            "id": s.n * 100_000 + k,
            "ts_event": int(time.time()),
            "list_id": [s.list_id],
        }
        # The person unsubscribes inside Brevo first: the connector confirms every opt-out
        # webhook against Brevo's state before it writes to onOffice.
        await _post(
            client,
            f"{brevo}/_control/accounts/{s.brevo_key}/contacts/{s.email(k)}/action",
            json={"action": "unsubscribe"},
        )
        auth = {"Authorization": f"Bearer {s.hook_token}"}
        sent = time.time()
        response = await _post(client, s.hook_url, json=[event], headers=auth)
        if response.status_code == 200:
            acked[s.n] = (sent, time.time(), s.address_id(k))

    await asyncio.gather(*(one(s) for s in smalls))
    lags = Lags()
    seen_poll: dict[int, float] = {}
    created: dict[int, float] = {}  # address id -> first activity's creation (emulator clock)
    wanted = {address_id for _, _, address_id in acked.values()}
    tokens = {s.tenant.token: s.n for s in smalls}
    deadline = time.monotonic() + wait_s
    while True:
        reads = (await client.get(f"{onoffice}/_control/change-reads?since={round_start}")).json()
        for token, times in reads.items():
            n = tokens.get(token)
            if n is not None and n not in seen_poll:
                later = [t for t in times if t >= asked[n]]
                if later:
                    seen_poll[n] = min(later) - asked[n]
        log = (await client.get(f"{onoffice}/_control/activity-log?after={cursor}")).json()
        cursor = log["next"]
        for address_id, at in log["entries"]:
            if address_id in wanted:
                created.setdefault(address_id, at)
        done = len(seen_poll) == len(asked) and wanted <= set(created)
        if done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.25)
    for n in asked:
        if n in seen_poll:
            lags.poll.setdefault(n, []).append(seen_poll[n])
        else:
            lags.poll_missing += 1
    for sent, ack, address_id in acked.values():
        lags.ack.append(ack - sent)
        if address_id in created:
            # From the acknowledgement to the change in onOffice; an activity created before
            # this process read the answer counts as 0 (the ack latency is reported beside).
            lags.apply.append(max(0.0, created[address_id] - ack))
            lags.apply_from_send.append(created[address_id] - sent)
    lags.apply_missing = len(acked) - len(lags.apply) + (len(smalls) - len(acked))
    return lags


async def _post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> httpx.Response:
    """POST, once more after a dropped keep-alive connection (the server closed it as it was
    reused; a webhook sent again is deduplicated by the connector, as a provider's retry)."""
    try:
        return await client.post(url, **kwargs)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        return await client.post(url, **kwargs)


def merge(into: Lags, other: Lags) -> None:
    for n, values in other.poll.items():
        into.poll.setdefault(n, []).extend(values)
    into.apply += other.apply
    into.apply_from_send += other.apply_from_send
    into.ack += other.ack
    into.poll_missing += other.poll_missing
    into.apply_missing += other.apply_missing


async def amain(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    return await on_fresh_stack(
        args,
        log_dir,
        lambda stack, client: _amain(args, stack, client),
        limits=httpx.Limits(max_connections=100),
    )


async def _amain(
    args: argparse.Namespace, stack: Stack, client: httpx.AsyncClient
) -> dict[str, Any]:
    profile = PROFILES[args.profile]
    note(f"starting emulators (onOffice: {args.big} + {args.tenants} x {args.per_tenant})")
    oo = start_emulator(
        stack, "onoffice", options=["--seed-addresses", str(args.big), "--seed", "7"]
    )
    latency_s = profile.provider_ms / 1000
    mc_options = latency_options(latency_s, profile.provider_per_item_us / 1e6)
    mc = start_emulator(stack, "mailchimp", options=mc_options)
    br = start_emulator(stack, "brevo", options=latency_options(latency_s))
    await mc.ready(client)
    await br.ready(client)
    await oo.ready(client, wait_s=300)
    onoffice, mailchimp, brevo = oo.url, mc.url, br.url
    await client.post(
        f"{onoffice}/_control/addresses",
        json={"addresses": small_records(args.tenants, args.per_tenant), "replace": False},
    )
    await client.post(f"{onoffice}/_control/latency", json={"seconds": profile.onoffice_ms / 1000})

    # Split: interactive and bulk queues in separate workers, the bulk ones at WORKER_BULK_NICE.
    queues = ("interactive", "bulk") if args.layout == "split" else ()
    connector = await launch_connector(
        stack,
        client,
        args,
        onoffice,
        mailchimp,
        queues=queues,
        BREVO_PROCESS_POLL_S="0.5",
        BREVO_API_URL=f"{brevo}/v3",
    )
    api = connector.url

    note(f"activating {args.tenants} small tenants (Brevo) and the big one (Mailchimp)")
    big = Tenant(web_id="BIG", token="b" * 32, secret="b" * 64, address_range=(1, args.big))
    big_session, _ = await activate_and_connect(
        client, api, onoffice, "mailchimp", MAILCHIMP_KEY, big
    )
    smalls = []
    for n in range(1, args.tenants + 1):
        low = SMALL_BASE + n * 1000 + 1
        s = Small(n, Tenant.numbered(n, (low, low + 998)), f"brevo-key-{n}")
        await client.post(f"{brevo}/_control/accounts", json={"api_key": s.brevo_key})
        s.session, _ = await activate_and_connect(
            client, api, onoffice, "brevo", s.brevo_key, s.tenant
        )
        smalls.append(s)
    accounts = (await client.get(f"{brevo}/_control/state")).json()["accounts"]
    for s in smalls:
        account = accounts[s.brevo_key]
        s.list_id = int(next(i for i, name in account["lists"].items() if name == "onoffice"))
        (hook,) = account["webhooks"]
        s.hook_url, s.hook_token = hook["url"], hook["auth"]["token"]

    note("first full sync of every small tenant, then one poll each (sets its cursor)")
    started = []
    for s in smalls:
        run = (await client.post(f"{api}/api/v1/syncs", headers=_auth(s.session))).json()
        started.append((s.session, str(run["id"])))
    done = await wait_runs(client, api, started, args.timeout)
    failed = [r for r in done if r["status"] != "completed"]
    if failed:
        raise BenchError(f"{len(failed)} small syncs failed, e.g. {failed[0].get('error')}")
    for s in smalls:
        await client.post(f"{api}/api/v1/changes/poll", headers=_auth(s.session))
    await asyncio.sleep(3)

    quiet, during = Lags(), Lags()
    for r in range(args.quiet_rounds):
        note(f"quiet round {r + 1}")
        merge(quiet, await measure_round(client, api, onoffice, brevo, smalls, args.round_s))
    note(f"big sync of {args.big} addresses starts")
    sync_started = time.monotonic()
    run = (await client.post(f"{api}/api/v1/syncs", headers=_auth(big_session))).json()
    big_status: dict[str, Any] = {}
    rounds = 0
    while rounds < args.max_rounds:
        rounds += 1
        note(f"round {rounds} during the big sync ({time.monotonic() - sync_started:.0f} s in)")
        merge(during, await measure_round(client, api, onoffice, brevo, smalls, args.round_s))
        big_status = (
            await client.get(f"{api}/api/v1/syncs/{run['id']}", headers=_auth(big_session))
        ).json()
        if big_status["status"] in ("completed", "failed"):
            break
    overlapped = big_status.get("status") not in ("completed", "failed") or rounds > 1
    (final,) = await wait_runs(client, api, [(big_session, run["id"])], args.timeout)
    return {
        "quiet": quiet,
        "during": during,
        "big_status": final["status"],
        "big_wall_s": time.monotonic() - sync_started,
        "big_duration_s": final.get("duration_s"),
        "rounds_during": rounds,
        "overlapped": overlapped,
    }


def _auth(session: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session}"}


def _missed_share(lags: Lags) -> float:
    observed = len(lags.apply) + len(lags.all_poll())
    missing = lags.apply_missing + lags.poll_missing
    return missing / (observed + missing) if observed + missing else 0.0


def _figures(lags: Lags) -> dict[str, Any]:
    per_tenant_max = [max(v) for v in lags.poll.values() if v]
    return {
        "poll_lag_p50_s": q(lags.all_poll(), 50),
        "poll_lag_p99_s": q(lags.all_poll(), 99),
        "poll_lag_worst_tenant_s": round(max(per_tenant_max), 2) if per_tenant_max else None,
        "poll_missing": lags.poll_missing,
        "apply_lag_p50_s": q(lags.apply, 50),
        "apply_lag_p99_s": q(lags.apply, 99),
        "apply_lag_from_send_p99_s": q(lags.apply_from_send, 99),
        "ack_p99_s": q(lags.ack, 99),
        "apply_missing": lags.apply_missing,
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    quiet, during = _figures(result["quiet"]), _figures(result["during"])
    rows = [(k, f"{quiet[k]}  |  {during[k]}") for k in quiet]
    print()
    print(table(rows, "Small tenants: before the big sync  |  while it runs"))
    p99 = during["apply_lag_p99_s"]
    base = quiet["apply_lag_p99_s"]
    # Events not seen within a round count too: their lag exceeds --round-s, so a p99 over the
    # observed lags alone would flatter a phase that lost more of them.
    missed = _missed_share(result["during"]), _missed_share(result["quiet"])
    delayed = (
        p99 is None
        or (base is not None and p99 > max(2 * base, base + 1.0))
        or missed[0] > max(2 * missed[1], 0.05)
    )
    rows = [
        ("big sync", f"{result['big_status']} after {result['big_wall_s']:.1f} s"),
        ("rounds while it ran", str(result["rounds_during"])),
        (
            "p99 apply lag ≤ 5 s while it runs",
            "yes" if p99 is not None and p99 <= 5 and not result["during"].apply_missing else "NO",
        ),
        (
            "events not seen within a round",
            f"{missed[1]:.0%} before, {missed[0]:.0%} during (their lag > {args.round_s:g} s)",
        ),
        ("big sync delays the others", "yes" if delayed else "no"),
    ]
    print()
    print(table(rows, f"Verdict ({args.tenants} tenants, {args.big} addresses in the big sync)"))
    print()
    print(
        json.dumps(
            {
                "tenants": args.tenants,
                "big_contacts": args.big,
                "big_wall_s": round(result["big_wall_s"], 1),
                "before": quiet,
                "during": during,
                "big_sync_delays_others": delayed,
            }
        )
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.tenants", description=__doc__.split("\n\n")[0])
    p.add_argument("--tenants", type=int, default=200, help="small tenants")
    p.add_argument("--per-tenant", type=int, default=10, help="addresses per small tenant")
    p.add_argument("--big", type=int, default=100_000, help="addresses of the big tenant")
    p.add_argument("--profile", choices=sorted(PROFILES), default="zero")
    add_worker_args(p)
    p.add_argument(
        "--layout",
        choices=("split", "shared"),
        default="split",
        help="split: --workers interactive and --workers bulk worker processes (the bulk ones "
        "at WORKER_BULK_NICE); shared: --workers processes serving both queues",
    )
    p.add_argument("--round-s", type=float, default=15.0, help="longest wait per round")
    p.add_argument("--quiet-rounds", type=int, default=1)
    p.add_argument("--max-rounds", type=int, default=8, help="rounds during the big sync")
    p.add_argument("--timeout", type=float, default=900.0)
    args = parse_bench_args(p, argv, "connector_bench_tenants")
    if args.quiet_rounds + args.max_rounds > args.per_tenant:
        p.error("--per-tenant must be at least --quiet-rounds + --max-rounds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = [
        ("tenants", f"{args.tenants} small (Brevo, {args.per_tenant} addresses) + 1 big"),
        ("big sync", f"{args.big} addresses, Mailchimp"),
        ("latency profile", PROFILES[args.profile].describe()),
    ]
    layout = "interactive + bulk" if args.layout == "split" else "both queues"
    return run_benchmark(
        args,
        "Many-tenants benchmark",
        rows,
        "connector-bench-tenants-",
        amain,
        report,
        workers=f"{args.workers} x {layout}",
    )


if __name__ == "__main__":
    sys.exit(main())
