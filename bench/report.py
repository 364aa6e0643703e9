"""The figures of a full-sync benchmark: tables for people, one JSON line for machines."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.model import Bound, Expectation, LatencyProfile
from bench.oracle import balance, count_mismatches
from bench.sampler import MB, ProcStats, writes
from bench.stack import (
    EMULATORS,
    BenchError,
    code_version,
    machine,
    note,
    raise_interrupt,
    redis_url,
)

T = TypeVar("T")


@dataclass
class RunResult:
    run: dict[str, Any]
    wall_s: float
    rss: dict[str, ProcStats]
    provider_requests: Counter[str]
    provider_extra: dict[str, Any]
    onoffice_http: int
    onoffice_actions: Counter[str]
    # Seconds after the POST when each was first seen (polled every 0.25 s): the phases, the
    # end of the onOffice read (`read`) and the last batch sent (`sent`): the critical path.
    marks: dict[str, float] = field(default_factory=dict)


@dataclass
class SizeResult:
    contacts: int
    expected: Expectation
    first: RunResult
    second: RunResult
    worker_names: list[str]
    setup_s: float
    bounds: tuple[Bound, Bound] | None = None
    exact: tuple[bool, bool] = (False, False)
    state_problems: list[str] = field(default_factory=list)


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
    e = r.expected.as_counts()
    total = c["onoffice_newsletter_total"]
    outcomes = balance(c)
    rows: list[tuple[str, str]] = [
        ("status", f"{run['status']}" + (f"  error: {run['error']}" if run.get("error") else "")),
        ("contacts seeded in onOffice", f"{r.contacts}"),
        (
            "newsletter=Yes addresses",
            f"{total}  (expected {e['total']}: {check(total == e['total'])}; "
            f"{e['set_to_no']} of them set to No after reading, by the person rule)",
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
        ("opted out (person rule)", f"{c['opted_out']}  (expected {e['opted_out']})"),
        ("rejected by provider", f"{c['rejected']}"),
        ("tags pulled back", f"{c['tags_pulled']}"),
        (
            "counts reconcile",
            f"{check(outcomes == total and bool(c['reconciled']))}  "
            f"(synced+duplicates+invalid+rejected+opted out+pending+bounced+archived = "
            f"{outcomes}; API reconciled={c['reconciled']})",
        ),
        (
            "matches independent expectation",
            check(not count_mismatches(c, r.expected)),
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
        ("first seen at (s)", marks(result)),
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
        print(bound_report(r, 0))
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
            ("first seen at (s)", marks(s)),
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
        print(bound_report(r, 1))
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


def print_setup(args: argparse.Namespace, sizes: list[int], profile: LatencyProfile) -> None:
    rows = [
        ("sizes", ", ".join(str(s) for s in sizes)),
        ("provider", args.provider),
        ("workers", f"{args.workers} (WORKER_CONCURRENCY {args.worker_concurrency or 'default'})"),
        ("latency profile", profile.describe()),
        ("database / redis", f"{args.db_name} / {redis_url(args)}"),
        ("machine", machine()),
        ("code", code_version()),
    ]
    if args.baseline:
        rows.insert(4, ("baseline", f"{args.baseline}: one provider request per contact"))
    print(table(rows, "Full-sync benchmark"))


def _ratio(wall: float, bound: float) -> float | None:
    return round(wall / bound, 2) if bound > 0 else None


def bound_report(r: SizeResult, index: int) -> str:
    if r.bounds is None:
        return ""
    b = r.bounds[index]
    result = (r.first, r.second)[index]
    ratio = _ratio(result.wall_s, b.lower_bound_s)
    calls = sum(result.provider_requests.values())
    rows = [
        ("lower bound (model + limits)", f"{b.lower_bound_s:.1f} s"),
        ("wall / lower bound", f"{ratio if ratio is not None else '-'}"),
        ("provider calls / ideal", f"{calls} / {b.ideal_provider_calls}"),
        ("onOffice calls / ideal reads", f"{result.onoffice_http} / {b.ideal_onoffice_calls}"),
        ("exact (provider state = expectation)", "yes" if r.exact[index] else "NO"),
    ]
    rows += [(f"  {k}", f"{v:.1f}" if isinstance(v, float) else str(v)) for k, v in b.parts.items()]
    label = f"sync {index + 1}: "
    rows += [("  problem", p[len(label) :]) for p in r.state_problems if p.startswith(label)]
    return "\n" + table(rows, "Distance to the limit")


def _run_json(r: SizeResult, index: int) -> dict[str, Any]:
    result = (r.first, r.second)[index]
    bound = r.bounds[index] if r.bounds else None
    return {
        "wall_s": round(result.wall_s, 2),
        "lower_bound_s": round(bound.lower_bound_s, 2) if bound else None,
        "lower_bound_ratio": _ratio(result.wall_s, bound.lower_bound_s) if bound else None,
        "provider_calls": sum(result.provider_requests.values()),
        "ideal_provider_calls": bound.ideal_provider_calls if bound else None,
        "onoffice_calls": result.onoffice_http,
        "exact": r.exact[index],
        "worker_peak_rss_mb": round(max(result.rss[w].peak_rss for w in r.worker_names) / MB, 1),
        "worker_cpu_s": round(sum(result.rss[w].cpu_s for w in r.worker_names), 1),
        "marks_s": {k: round(v, 1) for k, v in result.marks.items()},
    }


def marks(result: RunResult) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in result.marks.items()) or "-"


def json_line(r: SizeResult) -> str:
    """`contacts`, `newsletter_yes`, the first sync's figures, and the same under `second`."""
    return json.dumps(
        {
            "contacts": r.contacts,
            "newsletter_yes": r.expected.total,
            **_run_json(r, 0),
            "second": _run_json(r, 1),
        }
    )


# -------------------------------------------------------------------------------------------------
# The common run of a benchmark's main
# -------------------------------------------------------------------------------------------------


def run_benchmark(
    args: argparse.Namespace,
    title: str,
    rows: list[tuple[str, str]],
    log_prefix: str,
    run: Callable[[argparse.Namespace, Path], Coroutine[Any, Any, T]],
    report: Callable[[argparse.Namespace, T], None],
    *,
    workers: str | None = None,
) -> int:
    """Print the setup (`rows`, then the workers (`workers` describes them, else their
    count), database and Redis, machine and code
    measured), run `run(args, log_dir)` and `report` its result; SIGTERM and Ctrl-C stop the
    run cleanly. The process logs are removed after a success (unless --keep-logs), else
    their folder is named. The exit status: 0, 1 (failed) or 130 (interrupted)."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    log_dir = Path(tempfile.mkdtemp(prefix=log_prefix))
    concurrency = args.worker_concurrency or "default"
    rows = [
        *rows,
        ("workers", f"{workers or args.workers} (WORKER_CONCURRENCY {concurrency})"),
        ("database / redis", f"{args.db_name} / {redis_url(args)}"),
        ("machine", machine()),
        ("code", code_version()),
    ]
    print(table(rows, title))
    ok = False
    try:
        result = asyncio.run(run(args, log_dir))
        report(args, result)
        ok = True
    except KeyboardInterrupt:
        note("interrupted; processes stopped and database dropped")
        return 130
    except BenchError as exc:
        note(f"benchmark failed: {exc}")
        return 1
    finally:
        if ok and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            note(f"process logs: {log_dir}")
    return 0
