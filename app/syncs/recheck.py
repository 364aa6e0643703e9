"""Before a full sync unsubscribes anyone as "left onOffice" (`finish.unsubscribe_stale`).

The run reads `Newsletter = Yes AND Status = 1` by `listoffset`. Each address that leaves that
filter while the run reads (set to No, archived) shifts the later ones by one, so an address
that stayed Yes can be missed: "not read by this run" does not prove "left onOffice". So the
subscribed contacts the run did not claim are re-read from onOffice in bulk — their known
addresses by id (`recordids`) and the addresses carrying their email (an `in` filter), one
request per RECHECK_CHUNK contacts:

* an email with an active newsletter-Yes address is classified like a page of the run
  (`classify.process_page`: the consent rule, batches), so the run syncs it;
* the others are marked as confirmed by this run (`contact.stale_run_id`); only those are
  counted by the safety valve and unsubscribed, and each chunk is re-read once more right
  before it is unsubscribed (a held set may be approved days later).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from app.connections.onoffice_access import onoffice_for_connection
from app.contacts.repository import ContactRepository
from app.contacts.values import check_email
from app.contacts.writer import LedgerWriter
from app.db.models import Connection, Contact, SyncRun
from app.history.writer import FULL_SYNC
from app.inbox.repository import InboundEventRepository
from app.incremental.push import read_person_addresses
from app.resources import Resources
from app.syncs.classify import close_open_batch, process_page
from app.syncs.common import READ_SLICE_S, batch_limit, default_language, load_run
from app.syncs.jobs import enqueue_unsubscribe_slice
from app.syncs.repository import SyncRepository
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import Address, NewsletterStatus

log = logging.getLogger(__name__)

RECHECK_CHUNK = 200  # contacts per bulk re-read (one request: an email filter and the ids)


def address_ids(contacts: Iterable[Contact]) -> list[int]:
    """Every onOffice address the ledger knows for these contacts."""
    ids: set[int] = set()
    for contact in contacts:
        ids.add(int(contact.address_id))
        ids.update(int(i) for i in contact.other_address_ids or [])
    return sorted(ids)


async def active_yes(onoffice: OnOfficeClient, contacts: Sequence[Contact]) -> list[Address]:
    """The addresses that are an active newsletter Yes now and carry one of these contacts'
    emails (read by id and by email in one request), in id order."""
    if not contacts:
        return []
    emails = {c.email for c in contacts}
    found = await onoffice.find_addresses_by_emails(sorted(emails), known_ids=address_ids(contacts))
    unique = {a.id: a for addresses in found.values() for a in addresses}
    return sorted(
        (
            a
            for a in unique.values()
            if a.active
            and a.newsletter == NewsletterStatus.yes
            and check_email(a.email).email in emails
        ),
        key=lambda a: a.id,
    )


async def recheck_stale(resources: Resources, run: SyncRun, connection: Connection) -> bool:
    """Re-read the run's candidates for "left onOffice" (see the module). True when every
    candidate is checked and nothing more is to be sent; False when batches were queued (the
    last one enqueues `sync.finalize` again) or a continuation job takes over."""
    loaded = await load_run(resources, run.id)
    if loaded is None:
        return False
    _run, _connection, tenant = loaded
    onoffice = onoffice_for_connection(resources, tenant, connection)
    language = default_language(connection)
    limit = batch_limit(resources, connection)
    async with resources.sessionmaker() as session:
        held_back = await InboundEventRepository.from_session(session).pending_opt_outs(
            connection.id
        )
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    after = 0
    while True:
        async with resources.sessionmaker() as session:
            rows = await ContactRepository.from_session(session).unchecked_stale(
                connection.id, run.id, after, RECHECK_CHUNK
            )
        if not rows:
            break
        after = rows[-1].id
        page = await active_yes(onoffice, rows)
        still = {check_email(a.email).email for a in page}
        gone = [r.id for r in rows if r.email not in still]
        # The person's other addresses (No, Cancellation, ...): decided like a page's.
        others = await read_person_addresses(onoffice, page) if page else {}
        ledger = LedgerWriter.for_run(connection, run.id)
        ledger.stale(gone)
        async with resources.transaction() as session:
            await ledger.save(session)
            if page:
                await process_page(
                    session,
                    run.id,
                    connection,
                    page,
                    language,
                    force=run.force,
                    batch_limit=limit,
                    held_back=held_back,
                    list_state_known=True,
                    others=others,
                )
        if page:
            log.info(
                "sync.stale_still_yes",
                extra={"run_id": run.id, "addresses": [a.id for a in page]},
            )
        if time.monotonic() > deadline:
            await _close_batch(resources, run.id)
            async with resources.transaction():
                enqueue_unsubscribe_slice(run.id, approved=False)
            return False
    return not await _close_batch(resources, run.id)


async def _close_batch(resources: Resources, run_id: int) -> bool:
    """Hand the open batch (contacts found still Yes) to a job; True when there was one."""
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        _batch, _chunks, open_size = await repo.run_state(run_id)
        if not open_size:
            return False
        await close_open_batch(repo, run_id)
        return True


async def confirm_gone(
    onoffice: OnOfficeClient, resources: Resources, rows: Sequence[Contact]
) -> list[Contact]:
    """Of these confirmed-stale contacts, those still without an active newsletter-Yes address
    (re-read right before they are unsubscribed); the others lose their mark and are left to
    the incremental push and the next run."""
    found = {check_email(a.email).email for a in await active_yes(onoffice, rows)}
    back = [r.id for r in rows if r.email in found]
    if back:
        ledger = LedgerWriter(rows[0].connection_id, FULL_SYNC)
        ledger.stale(back, confirmed=False)
        async with resources.transaction() as session:
            await ledger.save(session)
    return [r for r in rows if r.email not in found]
