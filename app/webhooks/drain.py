"""One drain per connection: takes its pending events in arrival order, in batches.

Only the owner of the connection's drain flag (`app.inbox.owner`) applies events, so there
is no lock to contend for and no job per event. A drain job works for a bounded time, then
hands over to a successor job under the same owner; when nothing is left it gives the flag up
and looks once more for events that arrived meanwhile. onOffice down: the events stay pending
and the owner comes back after a backoff; an event onOffice rejects stays pending on its own
(later events of its email wait behind it) and is tried again after a backoff. The sweep (every
minute) kicks the drain of every connection with pending events, the safety net for a lost
enqueue or a dead worker.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.contacts.rules import aware
from app.contacts.values import normalise_email
from app.db.base import utcnow
from app.db.models import InboundEvent
from app.inbox import drain as inbox_drain
from app.inbox import owner
from app.inbox.jobs import drain_job, later_job
from app.inbox.repository import InboundEventRepository
from app.lifecycle.repository import LifecycleRepository
from app.resources import Resources
from app.webhooks.apply import EventApplier
from app.webhooks.batch import BatchApplier
from app.webhooks.confirming import keep_listing, kept_listing
from app.webhooks.deps import ApplyDeps
from app.webhooks.outcomes import hold_burst, is_burst_candidate
from app.webhooks.plan import Stop, emails_of
from app.worker.queue import compute_backoff

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A job drains this share of the job timeout, then hands over (a batch takes a few seconds).
JOB_BUDGET_SHARE = 0.5
RETRY_CAP_S = 120.0


@dataclass
class DrainState:
    """What one drain job remembers between its batches."""

    skip: set[int] = field(default_factory=set)  # pending, to be tried again after a backoff
    retry_attempts: int = 0  # the highest attempt count among them
    wait_s: float | None = None  # single removals waiting out the burst window
    applier: EventApplier | None = None
    listing: dict[str, Any] | None = None  # the predecessor's listing cursor (a hand-over)


async def run_drain(
    resources: Resources,
    connection_id: int,
    token: str | None,
    *,
    step: int = 0,
    claim_as: str | None = None,
    listing: dict[str, Any] | None = None,
) -> None:
    """The drain job: as `token`'s owner (a hand-over), or claiming the flag first (a kick:
    a no-op when another drain owns the connection; `app.inbox.drain.run`)."""
    work = functools.partial(_drain_as_owner, resources, connection_id, step=step, listing=listing)
    await inbox_drain.run(resources, connection_id, token, claim_as, work)


async def _drain_as_owner(
    resources: Resources,
    connection_id: int,
    held: list[str],
    *,
    step: int,
    listing: dict[str, Any] | None,
) -> None:
    budget = resources.settings.WORKER_JOB_TIMEOUT_S * JOB_BUDGET_SHARE
    deadline = time.monotonic() + budget
    if listing is None:  # a kick: go on where the connection's last drain job's listing stopped
        listing = await kept_listing(resources, connection_id)
    state = DrainState(listing=listing)
    try:
        await _drain_loop(resources, connection_id, held, step, deadline, state)
    finally:
        await _settled(state)  # also when the job fails: what was written is recorded


async def _drain_loop(
    resources: Resources,
    connection_id: int,
    held: list[str],
    step: int,
    deadline: float,
    state: DrainState,
) -> None:
    token = held[0]
    while True:
        if not await owner.still_owner(resources, connection_id, token):
            return  # the flag expired and another drain took over
        try:
            more = await _drain_batch(resources, connection_id, state)
            if not more or time.monotonic() >= deadline:
                await _settled(state)  # before looking at what is left or handing over
        except Stop as stop:
            await _settled(state)
            if stop.waiting_for_login:
                # Every later event needs the same fresh onOffice login: the sweep retries.
                await owner.release(resources, connection_id, token)
                return
            delay = compute_backoff(stop.attempts, cap=RETRY_CAP_S)
            await _hand_over(resources, connection_id, token, step + 1, delay)
            return
        if more:
            if time.monotonic() < deadline:
                continue
            hint = await _listing_hint(resources, connection_id, state)
            await _hand_over(resources, connection_id, token, step + 1, 0.0, hint)
            return
        if state.applier is not None:
            await keep_listing(resources, connection_id, state.applier.states)
        await owner.release(resources, connection_id, token)
        await _schedule_retries(resources, connection_id, state)
        async with resources.sessionmaker() as session:
            arrived = await InboundEventRepository.from_session(session).pending_besides(
                connection_id, state.skip
            )
        if not arrived:
            return
        claimed = await owner.claim(resources, connection_id)
        if claimed is None:
            return  # a new drain was started for them
        token = held[0] = claimed


async def _settled(state: DrainState) -> None:
    """Wait for the last batch's settling transaction (`app.webhooks.settling`)."""
    if state.applier is not None:
        await state.applier.settling.wait()


async def _hand_over(
    resources: Resources,
    connection_id: int,
    token: str,
    step: int,
    defer_s: float,
    listing: dict[str, Any] | None = None,
) -> None:
    await owner.still_owner(resources, connection_id, token, defer_s=defer_s)
    job = drain_job(connection_id, token, step=step, defer_s=defer_s, listing=listing)
    await resources.queue.enqueue(job)


async def _listing_hint(
    resources: Resources, connection_id: int, state: DrainState
) -> dict[str, Any] | None:
    """Where the successor's confirmation reads go on: from the first of its next events."""
    if state.applier is None:
        return None
    async with resources.sessionmaker() as session:
        rows = await InboundEventRepository.from_session(session).pending(
            connection_id=connection_id, limit=BATCH_SIZE
        )
    return state.applier.states.hint([e for r in rows for e in emails_of(r)])


async def _schedule_retries(resources: Resources, connection_id: int, state: DrainState) -> None:
    """Events left pending on purpose come back later through a kick (a new drain)."""
    delays = []
    if state.skip:
        delays.append(max(1.0, compute_backoff(state.retry_attempts, cap=RETRY_CAP_S)))
    if state.wait_s is not None:
        delays.append(state.wait_s)
    if delays:
        await resources.queue.enqueue(later_job(connection_id, min(delays)))


async def drain_now(resources: Resources, connection_id: int, *, budget_s: float) -> None:
    """Apply the connection's pending events here and now, for at most `budget_s` (before a
    list switch or a disconnect): as the drain's owner (taken over from a drain waiting out a
    backoff), without waiting out the archive window (no more events arrive for this list;
    a burst is still held). Events onOffice refuses stay pending."""
    deadline = time.monotonic() + budget_s
    token = await owner.claim(resources, connection_id)
    wait_until = min(deadline, time.monotonic() + 3.0)  # a drain mid-batch finishes it
    while token is None and time.monotonic() < wait_until:
        await asyncio.sleep(0.1)
        token = await owner.claim(resources, connection_id)
    if token is None:
        token = await owner.take_over(resources, connection_id)
    state = DrainState()
    try:
        while time.monotonic() < deadline:
            if not await _drain_batch(resources, connection_id, state, window_s=0.0):
                break
    except Stop:
        pass  # onOffice is down or refuses: what is left stays pending
    finally:
        try:
            await _settled(state)
        finally:
            await owner.release(resources, connection_id, token)


async def _drain_batch(
    resources: Resources, connection_id: int, state: DrainState, *, window_s: float | None = None
) -> bool:
    """One batch; True when more events are ready right away. One read session for the
    connection, its pending events and their ledger rows; one onOffice lookup; grouped writes;
    one settling transaction. `window_s` overrides the archive window."""
    settings = resources.settings
    window = settings.ARCHIVE_BURST_WINDOW_S if window_s is None else window_s
    # The last batch's events are still pending until its settling transaction commits.
    settling = state.applier.settling.ids if state.applier is not None else frozenset()
    limit = BATCH_SIZE + len(state.skip)
    async with resources.sessionmaker() as session:
        connection, tenant = await ConnectionRepository.from_session(session).with_tenant(
            connection_id
        )
        read = await InboundEventRepository.from_session(session).pending(
            connection_id=connection_id, limit=limit, besides=settling
        )
        if connection is None or tenant is None or not read:
            return False
        if await OnOfficeAccessRepository.from_session(session).get(connection_id) is not None:
            # onOffice refuses the access (app/connections/access.py): the events wait, no try
            # counted; the drain is started again when the access works.
            raise Stop(waiting_for_login=True)
        untaken = [r for r in read if r.id not in state.skip]
        rows = untaken[:BATCH_SIZE]
        if not rows:
            return False
        # Whether every pending event was read and taken into this batch.
        everything_read = len(read) < limit and len(untaken) <= BATCH_SIZE
        if state.applier is None or state.applier.connection.id != connection.id:
            deps = ApplyDeps.of(resources, tenant, connection)
            state.applier = EventApplier(deps, connection, tenant)
            state.applier.states.take_hint(state.listing)
        else:
            state.applier.connection = connection
        batch = BatchApplier(state.applier)
        # Only removals can make a burst ("Archive All"); without one, the ledger rows of the
        # batch are read in this session too.
        burst = any(is_burst_candidate(r) for r in read)
        known: list[int] | None = None
        if not burst:
            ready = _ready(rows, state, window)
            known = await batch.read_ledger(session, [e for r in ready for e in emails_of(r)])
    if burst:
        if await hold_burst(resources, settings, connection_id):
            return True  # the burst's events are held; the rest goes on in the next batch
        ready = _ready(rows, state, window)
    if not ready:
        return not everything_read
    blocked = await batch.apply(ready, known)
    for row in ready:
        if emails_of(row) & blocked:
            # Still pending: tried again after a backoff, after the events before it.
            state.skip.add(row.id)
            state.retry_attempts = max(state.retry_attempts, row.attempts)
    # Everything pending was in this batch: events that arrived meanwhile are found by the
    # look after the release (`pending_besides`), without another read here.
    return not everything_read


def _ready(rows: list[InboundEvent], state: DrainState, window: float) -> list[InboundEvent]:
    """The rows to apply now, in order; a single young archive/delete (and the later events of
    its email) waits in `state.skip`."""
    young_after = utcnow() - timedelta(seconds=window)
    waiting: set[str] = set()
    ready: list[InboundEvent] = []
    for row in rows:
        email = normalise_email(str(row.payload.get("email", "")))
        if email in waiting:
            state.skip.add(row.id)  # keep the order per email behind a removal that waits
            continue
        received = aware(row.received_at) or utcnow()
        if is_burst_candidate(row) and not row.payload.get("_released") and received > young_after:
            # A single archive/delete waits out the window, so that a burst ("Archive All")
            # is recognised as one before any of it is applied.
            waiting.add(email)
            state.skip.add(row.id)
            wait = (received - young_after).total_seconds() + 0.5
            state.wait_s = wait if state.wait_s is None else min(state.wait_s, wait)
            continue
        ready.append(row)
    return ready


async def sweep(resources: Resources) -> int:
    """Kick the drain of every connection with pending events (lost enqueues, retries);
    events a disconnect left open join a connection their tenant has again."""
    async with resources.transaction() as session:
        lifecycle = LifecycleRepository.from_session(session)
        for tenant_id, connection_id in await lifecycle.orphan_owners():
            await lifecycle.adopt_orphans(tenant_id, connection_id)
    async with resources.sessionmaker() as session:
        ids = await InboundEventRepository.from_session(session).connections_with_pending()
    for connection_id in ids:
        await owner.kick(resources, connection_id)
    return len(ids)
