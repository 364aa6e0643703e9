"""The latency model of a benchmark run and what it implies: the ideal number of provider calls
and a lower bound of the wall time, from the data and the documented limits.

The bound is what no implementation can beat under the model, not a schedule:
- onOffice: `pages = ceil(newsletter_yes / 500)` reads, `onoffice_concurrency` at a time, each
  `onoffice_ms` (onOffice documents no rate limit; the concurrency is the connector's choice);
- Mailchimp: 10 connections per key, so the provider part takes at least
  `max(sum of request durations / 10, the longest request)`; a request costs `provider_ms +
  per_item_us x items`;
- Brevo: 10 requests/s on /contacts, so `n` such requests span at least `(n - 1) / 10` s, and an
  import is processed `brevo_import_s` after it was accepted.
Dependencies that no design avoids are added: the provider work cannot start before the first
onOffice page is back, and the last batch (and, for Brevo, its import processing) cannot start
before the last page is read.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

ONOFFICE_PAGE = 500
MAILCHIMP_BATCH = 500
MAILCHIMP_SEGMENT_BATCH = 500
MAILCHIMP_PAGE = 1000
MAILCHIMP_CONNECTIONS = 10
BREVO_PAGE = 500
BREVO_RPS = 10.0


@dataclass(frozen=True)
class LatencyProfile:
    name: str
    provider_ms: float  # per provider request
    provider_per_item_us: float  # per contact in a provider bulk body or page
    onoffice_ms: float  # per onOffice request (a read page of 500)
    brevo_import_s: float  # until a Brevo import process reports completed
    brevo_per_item_us: float = 0.0  # Brevo: per contact in an import body or list page
    onoffice_concurrency: int = 4  # onOffice reads in flight assumed by the bound

    def describe(self) -> str:
        return (
            f"{self.name}: provider {self.provider_ms:g} ms/request + "
            f"{self.provider_per_item_us:g} µs/item (Brevo {self.brevo_per_item_us:g} µs/item), "
            f"onOffice {self.onoffice_ms:g} ms/request ({self.onoffice_concurrency} reads in "
            f"flight), Brevo import processing {self.brevo_import_s:g} s; limits: Mailchimp "
            f"{MAILCHIMP_CONNECTIONS} connections, Brevo {BREVO_RPS:g} requests/s on /contacts"
        )


PROFILES = {
    # Mailchimp answering a 500-member batch in 1.6 s and a 1,000-member page in 3.1 s; onOffice
    # 200 ms a read (issue 10). Brevo: same per-request latency, 20 µs per imported contact
    # (a 10,000-contact import body in 0.3 s) and 2 s of import processing.
    "realistic": LatencyProfile("realistic", 100.0, 3000.0, 200.0, 2.0, brevo_per_item_us=20.0),
    "zero": LatencyProfile("zero", 0.0, 0.0, 0.0, 0.0),
}


@dataclass
class Expectation:
    """The run's outcome computed independently of the connector from the emulator's records."""

    total: int = 0  # active addresses with newsletter = Yes
    unique: int = 0  # people to subscribe: valid emails with a Yes and no opt-out
    duplicates: int = 0  # Yes addresses after the first of their email (KdNr order)
    missing: int = 0
    invalid: int = 0  # incl. missing (the connector's invalid_emails counts both)
    # People (valid emails) with a Yes address and an active No or Cancellation address: an
    # opt-out (one person across duplicates), counted once, never subscribed; the run sets
    # their `set_to_no` Yes addresses to No in onOffice.
    opted_out: int = 0
    set_to_no: int = 0
    tags: dict[str, list[str]] = field(default_factory=dict)  # email -> tags of its owner

    def as_counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int)}

    def after_first(self) -> Expectation:
        """What an unchanged second sync reads: the opted-out people's Yes addresses say No."""
        return replace(
            self,
            total=self.total - self.set_to_no,
            duplicates=self.duplicates - (self.set_to_no - self.opted_out),
            opted_out=0,
            set_to_no=0,
        )

    def tag_members(self) -> Counter[str]:
        return Counter(tag for tags in self.tags.values() for tag in tags)


@dataclass
class Bound:
    lower_bound_s: float
    ideal_provider_calls: int
    ideal_onoffice_calls: int
    parts: dict[str, float]  # the terms of the bound, for the report


def _duration(p: LatencyProfile, items: int, per_item_us: float | None = None) -> float:
    per_item = p.provider_per_item_us if per_item_us is None else per_item_us
    return (p.provider_ms + per_item * items / 1000) / 1000


def _chunks(n: int, size: int) -> list[int]:
    return [min(size, n - start) for start in range(0, n, size)]


def _onoffice(p: LatencyProfile, e: Expectation) -> tuple[int, float]:
    pages = max(1, math.ceil(e.total / ONOFFICE_PAGE))
    return pages, math.ceil(pages / max(1, p.onoffice_concurrency)) * p.onoffice_ms / 1000


def mailchimp_bound(
    p: LatencyProfile, e: Expectation, *, members_before: int, tags_before: int
) -> Bound:
    """One full sync to Mailchimp. `members_before` is the audience size when the run starts
    (read once, in pages of 1000); writes are only needed when the audience is empty."""
    pages, t_oo = _onoffice(p, e)
    first_read = p.onoffice_ms / 1000
    reads = _chunks(members_before, MAILCHIMP_PAGE) or [0]
    durations = [_duration(p, n) for n in reads]
    last_batch = 0.0
    writes = 0
    if members_before < e.unique:  # the first sync: everything is new
        batches = _chunks(e.unique, MAILCHIMP_BATCH)
        segments = [
            n for count in e.tag_members().values() for n in _chunks(count, MAILCHIMP_SEGMENT_BATCH)
        ]
        new_tags = max(0, len(e.tag_members()) - tags_before)
        durations += [_duration(p, n) for n in batches]
        durations += [_duration(p, n) for n in segments]
        durations += [_duration(p, 0)] * (new_tags + 1)  # tag creations, one segment list read
        writes = len(batches) + len(segments) + new_tags
        last_batch = _duration(p, batches[-1]) if batches else 0.0
    work = sum(durations)
    t_provider = max(work / MAILCHIMP_CONNECTIONS, max(durations))
    bound = max(t_oo + last_batch, first_read + t_provider)
    return Bound(
        lower_bound_s=bound,
        ideal_provider_calls=len(durations),
        ideal_onoffice_calls=pages + 1,  # + the field definitions, read once per run
        parts={
            "onoffice_reads_s": t_oo,
            "provider_work_s": work,
            "provider_at_10_connections_s": t_provider,
            "provider_writes": writes,
        },
    )


def brevo_bound(
    p: LatencyProfile, e: Expectation, *, members_before: int, import_batch: int
) -> Bound:
    """One full sync to Brevo: list pages of 500 and imports of `import_batch`, all on /contacts
    (paced to 10/s), one process poll per import (not on /contacts)."""
    pages, t_oo = _onoffice(p, e)
    reads = _chunks(members_before, BREVO_PAGE) or [0]
    imports = _chunks(e.unique, import_batch) if members_before < e.unique else []
    contacts_requests = len(reads) + len(imports)
    t_rate = (contacts_requests - 1) / BREVO_RPS
    per_item = p.brevo_per_item_us
    read_s = max(_duration(p, n, per_item) for n in reads)
    tail = (
        (_duration(p, imports[-1], per_item) + p.brevo_import_s + _duration(p, 0))
        if imports
        else 0.0
    )
    bound = max(t_oo + tail, t_rate + read_s, p.onoffice_ms / 1000 + tail)
    return Bound(
        lower_bound_s=bound,
        ideal_provider_calls=contacts_requests + len(imports),  # + one poll per import
        ideal_onoffice_calls=pages + 1,  # + the field definitions, read once per run
        parts={
            "onoffice_reads_s": t_oo,
            "contacts_requests": contacts_requests,
            "pacing_s": t_rate,
            "provider_writes": len(imports),
        },
    )


def bound_for(
    provider: str,
    p: LatencyProfile,
    e: Expectation,
    *,
    members_before: int,
    tags_before: int = 0,
    import_batch: int = 10_000,
) -> Bound:
    if provider == "mailchimp":
        return mailchimp_bound(p, e, members_before=members_before, tags_before=tags_before)
    return brevo_bound(p, e, members_before=members_before, import_batch=import_batch)


def preview_bound(
    provider: str, p: LatencyProfile, e: Expectation, *, members_before: int
) -> Bound:
    """A dry-run preview: the same reads as a run (onOffice's pages, the provider's list in pages
    of 1000 at 10 connections or of 500 at 10/s), no write; both reads may overlap."""
    pages, t_oo = _onoffice(p, e)
    if provider == "mailchimp":
        durations = [_duration(p, n) for n in _chunks(members_before, MAILCHIMP_PAGE) or [0]]
        t_provider = max(sum(durations) / MAILCHIMP_CONNECTIONS, max(durations))
    else:
        durations = [
            _duration(p, n, p.brevo_per_item_us) for n in _chunks(members_before, BREVO_PAGE) or [0]
        ]
        t_provider = (len(durations) - 1) / BREVO_RPS + max(durations)
    return Bound(
        lower_bound_s=max(t_oo, t_provider),
        ideal_provider_calls=len(durations),
        ideal_onoffice_calls=pages + 1,  # + the field definitions
        parts={"onoffice_reads_s": t_oo, "provider_reads_s": t_provider},
    )


def profile_from_args(args: Any) -> LatencyProfile:
    """The chosen profile, with any explicitly given latency option taken instead."""
    base = PROFILES[args.profile]
    return LatencyProfile(
        name=base.name
        if all(
            getattr(args, k) is None
            for k in ("latency_ms", "latency_per_item_us", "onoffice_latency_ms")
        )
        else f"{base.name} (overridden)",
        provider_ms=base.provider_ms if args.latency_ms is None else args.latency_ms,
        provider_per_item_us=base.provider_per_item_us
        if args.latency_per_item_us is None
        else args.latency_per_item_us,
        onoffice_ms=base.onoffice_ms
        if args.onoffice_latency_ms is None
        else args.onoffice_latency_ms,
        brevo_import_s=base.brevo_import_s
        if args.brevo_import_delay_s is None
        else args.brevo_import_delay_s,
        brevo_per_item_us=base.brevo_per_item_us
        if args.latency_per_item_us is None
        else args.latency_per_item_us,
        onoffice_concurrency=args.onoffice_concurrency,
    )
