"""Reconcile one connection with its provider, and schedule the connections that are due.

A reconciliation reads `changed_since(watermark - OVERLAP)` (Mailchimp: two reads when nothing
changed, Brevo: one), decides each contact against the ledger (`app.contacts.reconcile`) and
stores what onOffice has to learn as events for the webhook applier, 500 contacts to a
transaction. The watermark moves to the read's start only when the whole read succeeded; the
windows overlap, and the events' keys (email, state, time) make a change found twice one event.
A failure is recorded (`key_failed` for a rejected key, else `failed`) and the connection is
tried again after the interval, doubled for each failure in a row (at most 16 times): a broken
key costs one read per back-off, never a tight loop. While a full sync of the connection runs
the reconciliation waits (the run reads the whole list and writes its opt-outs back itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.connections.factory import provider_for_connection
from app.connections.repository import ConnectionRepository
from app.contacts.ledger import store_reconciled
from app.contacts.reconcile import Found, reconcile_kind
from app.contacts.repository import ContactRepository, provider_signal
from app.contacts.values import normalise_email
from app.db.base import aware, utcnow
from app.db.models import Connection, ProviderReconcile
from app.inbox.repository import InboundEventRepository
from app.reconcile.jobs import enqueue_run
from app.reconcile.repository import ReconcileRepository
from app.resources import Resources
from app.syncs.repository import SyncRepository
from app.worker.locks import exclusive
from providers.base import NewsletterProvider, ProviderAuthError, ProviderContact, ProviderError

log = logging.getLogger(__name__)

# Each read reaches this far behind the watermark: provider clocks, a change committed while
# the last read ran, Brevo's and Mailchimp's timestamps to the second.
OVERLAP = timedelta(minutes=10)
CHUNK = 500  # contacts decided and stored in one transaction
MAX_BACKOFF = 16  # a failing connection waits at most this many intervals


class Result:
    never = "never"
    ok = "ok"
    failed = "failed"
    key_failed = "key_failed"


@dataclass
class Outcome:
    result: str
    changed: int = 0  # contacts the provider returned
    events: int = 0  # events stored for onOffice


def is_due(state: ProviderReconcile | None, now: datetime, interval: timedelta) -> bool:
    """Due once the interval passed since the last try; after failures in a row the interval
    doubles for each (at most MAX_BACKOFF times)."""
    if state is None or state.attempted_at is None:
        return True
    factor: int = min(2 ** max(state.failures, 0), MAX_BACKOFF)
    waited: timedelta = now - aware(state.attempted_at)
    return waited >= interval * factor


async def schedule(resources: Resources) -> int:
    """Enqueue a reconciliation for every connection that is due; how many."""
    interval_s = resources.settings.PROVIDER_RECONCILE_INTERVAL_S
    interval = timedelta(seconds=interval_s)
    now = utcnow()
    due = 0
    async with resources.transaction() as session:
        for connection_id, state in await ReconcileRepository.from_session(session).connections():
            if is_due(state, now, interval):
                enqueue_run(connection_id, interval_s)
                due += 1
    return due


async def reconcile(resources: Resources, connection_id: int) -> Outcome | None:
    """Reconcile the connection now (one at a time per connection: a second caller returns
    None at once, as does a connection without a list or with a full sync running)."""
    async with exclusive(resources, f"reconcile:{connection_id}") as acquired:
        if not acquired:
            return None
        return await _reconcile(resources, connection_id)


async def _reconcile(resources: Resources, connection_id: int) -> Outcome | None:
    async with resources.sessionmaker() as session:
        connection = await ConnectionRepository.from_session(session).get(connection_id)
        if connection is None or not connection.list_id:
            return None
        if await SyncRepository.from_session(session).active_run(connection_id) is not None:
            return None  # the run covers the list; the watermark stays for afterwards
        state = await ReconcileRepository.from_session(session).get(connection_id)
    started = utcnow()
    interval = timedelta(seconds=resources.settings.PROVIDER_RECONCILE_INTERVAL_S)
    mark = None
    if state is not None and state.ledger_key == connection.ledger_key:
        mark = aware(state.watermark)
    # A connection read for the first time (or with another list) looks one interval back.
    since = (mark or started - interval) - OVERLAP
    provider = provider_for_connection(resources, connection)
    outcome = Outcome(Result.ok)
    try:
        await _read(resources, provider, connection, since, outcome)
    except ProviderError as exc:
        outcome.result = Result.key_failed if isinstance(exc, ProviderAuthError) else Result.failed
        await _save(resources, connection, state, started, outcome, error=exc.message)
        log.warning(
            "reconcile.failed",
            extra={"connection_id": connection_id, "result": outcome.result, "error": exc.message},
        )
        return outcome
    await _save(resources, connection, state, started, outcome)
    if outcome.events:
        log.info(
            "reconcile.found",
            extra={
                "connection_id": connection_id,
                "changed": outcome.changed,
                "events": outcome.events,
            },
        )
    return outcome


async def _read(
    resources: Resources,
    provider: NewsletterProvider,
    connection: Connection,
    since: datetime,
    outcome: Outcome,
) -> None:
    assert connection.list_id is not None
    chunk: dict[str, ProviderContact] = {}
    async for member in provider.changed_since(connection.list_id, since):
        outcome.changed += 1
        chunk[normalise_email(member.email)] = member  # a later sighting wins
        if len(chunk) >= CHUNK:
            outcome.events += await _store(resources, connection, chunk, since)
            chunk = {}
    if chunk:
        outcome.events += await _store(resources, connection, chunk, since)


async def _store(
    resources: Resources,
    connection: Connection,
    chunk: dict[str, ProviderContact],
    since: datetime,
) -> int:
    """Decide each contact against the ledger and the chunk's received events not applied yet
    (read with the chunk: a burst of webhooks is still arriving while a long read goes on) and
    store the events (one transaction; the applier starts after the commit)."""
    assert connection.list_id is not None
    stored = 0
    async with resources.transaction() as session:
        ledger = await ContactRepository.from_session(session).by_emails(connection.id, chunk)
        # A miss here only stores an event twice (applied once), so the database may compare.
        pending = await InboundEventRepository.from_session(session).pending_news(
            connection.id, chunk, prefilter=True
        )
        for email, member in chunk.items():
            row = ledger.get(email)
            found = Found(member.status, member.last_changed, member.in_list, member.opted_in_at)
            known = provider_signal(row, None) if row is not None else None
            kind = reconcile_kind(found, known, since, pending.get(email, ()))
            if kind is None:
                continue
            event_id = await store_reconciled(
                session, connection.provider, connection.id, connection.list_id, kind, member
            )
            stored += event_id is not None
    return stored


async def _save(
    resources: Resources,
    connection: Connection,
    state: ProviderReconcile | None,
    started: datetime,
    outcome: Outcome,
    *,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {
        "attempted_at": started,
        "result": outcome.result,
        "changed": outcome.changed,
        "events": outcome.events,
    }
    if error is None:
        values |= {
            "ledger_key": connection.ledger_key,
            "watermark": started,
            "finished_at": utcnow(),
            "failures": 0,
            "error": None,
        }
    else:
        values |= {"failures": (state.failures if state else 0) + 1, "error": error[:2000]}
    async with resources.transaction() as session:
        await ReconcileRepository.from_session(session).save(connection.id, **values)
