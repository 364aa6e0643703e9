"""The safety valve's held unsubscribes: the run stores exactly the contacts it held back
(`held_unsubscribe`), the API and the UI list them, and an approval of that run unsubscribes
those contacts and no others (never a set recomputed at approval time, which would take in
every contact the incremental push subscribed since)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.contacts.repository import ContactRepository
from app.contacts.rules import aware, newer
from app.db.base import utcnow
from app.db.models import Connection, Contact, HeldUnsubscribe, SyncRun
from app.history.writer import FULL_SYNC, ONOFFICE, PROVIDER, action_entry, signal_entry
from app.history.writer import record as record_history
from app.lifecycle.repository import LifecycleRepository
from app.resources import Resources
from app.syncs.common import load_run
from app.syncs.jobs import enqueue_unsubscribe_slice
from app.syncs.recheck import confirm_gone
from app.syncs.repository import SyncRepository
from onoffice_client.client import OnOfficeClient
from providers.base import NewsletterProvider, ProviderRequestError, ProviderState

log = logging.getLogger(__name__)

# A valve holds at most this many (it holds when a large share would go at once).
HOLD_LIMIT = 1_000_000
CHUNK = 100
# A held contact a user approved: the approval job unsubscribes exactly these (`done` or
# `skipped` after); `dismissed`: a user kept it subscribed.
APPROVED = "approved"
DISMISSED = "dismissed"
SLICE_S = 20.0


async def hold_stale(resources: Resources, run: SyncRun, connection: Connection) -> int:
    """Store the contacts the run would unsubscribe as its held set; how many were held."""
    async with resources.transaction() as session:
        rows = await ContactRepository.from_session(session).stale(
            connection.id, run.id, HOLD_LIMIT
        )
        now = utcnow()
        await LifecycleRepository.from_session(session).hold(
            run.id,
            [{"email": c.email, "address_id": c.address_id, "held_at": now} for c in rows],
        )
        return await LifecycleRepository.from_session(session).count_held(run.id)


def still_held(contact: Contact | None, held_at: datetime) -> bool:
    """Whether an approval still unsubscribes a held contact: it is still subscribed and
    onOffice has not changed it since it was held (a later change was decided afresh)."""
    if contact is None or not contact.subscribed:
        return False
    return not newer(aware(contact.onoffice_changed_at), aware(held_at))


async def start_unsubscribing(
    resources: Resources, run: SyncRun, connection: Connection
) -> tuple[NewsletterProvider, OnOfficeClient] | None:
    """The run enters its unsubscribing phase; its provider and onOffice clients (None when
    the run is gone)."""
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(run.id, phase="unsubscribing")
    loaded = await load_run(resources, run.id)
    if loaded is None:
        return None
    provider = provider_for_connection(resources, connection)
    return provider, onoffice_for_connection(resources, loaded[2], connection)


async def record_left_onoffice(
    session: AsyncSession, run_id: int, contacts: Sequence[Contact], *, note: str | None = None
) -> None:
    """The ledger and the history of contacts unsubscribed because they left onOffice."""
    now = utcnow()
    repo = ContactRepository.from_session(session)
    entries = []
    for contact in contacts:
        entries.append(signal_entry(contact.email, ONOFFICE, "absent", FULL_SYNC, run_id, at=now))
        entries.append(
            action_entry(contact.email, PROVIDER, "unsubscribe", FULL_SYNC, run_id, note=note)
        )
    if contacts:
        await record_history(session, contacts[0].connection_id, entries)
    for contact in contacts:
        await repo.update(
            contact.id,
            subscribed=False,
            provider_status=ProviderState.unsubscribed,
            provider_changed_at=now,
            onoffice_status="absent",
            onoffice_changed_at=now,
        )


async def carry_out_held(resources: Resources, run: SyncRun, connection: Connection) -> bool:
    """Unsubscribe the run's held set, in time slices; False when a continuation job takes
    over. Each approved contact ends `done` (unsubscribed) or `skipped` (changed since)."""
    assert connection.list_id is not None
    clients = await start_unsubscribing(resources, run, connection)
    if clients is None:
        return True
    provider, onoffice = clients
    deadline = time.monotonic() + min(SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    while True:
        async with resources.sessionmaker() as session:
            lifecycle = LifecycleRepository.from_session(session)
            held: Sequence[HeldUnsubscribe] = await lifecycle.held(
                run.id, limit=CHUNK, status=APPROVED
            )
            contacts = await lifecycle.contacts_by_email(connection.id, [h.email for h in held])
        if not held:
            return True
        done: list[HeldUnsubscribe] = []
        skipped: list[int] = []
        candidates = [h for h in held if still_held(contacts.get(h.email), h.held_at)]
        # Re-read by id right before: an address that says Yes again by now is spared (an
        # onOffice error leaves the whole chunk held for the job's retry).
        gone = {
            c.email
            for c in await confirm_gone(
                onoffice, resources, [contacts[h.email] for h in candidates]
            )
        }
        for item in held:
            if item.email not in gone:
                skipped.append(item.id)
                continue
            try:
                await provider.set_subscription(connection.list_id, item.email, False)
            except ProviderRequestError as exc:
                log.warning(
                    "sync.unsubscribe_refused", extra={"run_id": run.id, "reason": exc.message}
                )
            done.append(item)
        async with resources.transaction() as session:
            await record_left_onoffice(
                session, run.id, [contacts[item.email] for item in done], note="approved"
            )
            lifecycle = LifecycleRepository.from_session(session)
            await lifecycle.mark_held([i.id for i in done], "done")
            await lifecycle.mark_held(skipped, "skipped")
            runs = SyncRepository.from_session(session)
            await runs.increment(run.id, unsubscribed=len(done))
            if len(held) < CHUNK:
                # The last chunk: the run's held count moves with its unsubscribed count (what
                # a user did not approve stays held).
                left = await lifecycle.count_held(run.id)
                await runs.set_run(run.id, held_unsubscribes=left, **_cleared(left))
        if len(held) < CHUNK:
            return True
        if time.monotonic() > deadline:
            async with resources.transaction():
                enqueue_unsubscribe_slice(run.id, approved=True)
            return False


def _cleared(left: int) -> dict[str, None]:
    """The run's warning goes once nothing is held any more."""
    return {} if left else {"warning": None}


async def held_list(
    resources: Resources, run_id: int, *, after: int, limit: int
) -> tuple[list[HeldUnsubscribe], int]:
    """A page of the contacts still held by `run_id`, and how many there are."""
    async with resources.sessionmaker() as session:
        lifecycle = LifecycleRepository.from_session(session)
        rows = list(await lifecycle.held(run_id, after_id=after, limit=limit))
        return rows, await lifecycle.count_held(run_id)
