"""Step 1 of a full sync (`sync.read`): the provider's list state, then the onOffice pages.

The provider's list state (status, last change, tags) is read once per run into `provider_member`,
in parallel pages and resumable time slices; it decides every contact and feeds the tag pull-back.
Then onOffice is read ONOFFICE_READ_CONCURRENCY pages at a time and classified strictly in
`KdNr` order (`classify.process_page`), so the duplicate rule stays exact.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.contacts.repository import ContactRepository
from app.contacts.rules import EXPLICIT_NO, Signal, aware
from app.contacts.values import (
    normalise_email,
)
from app.contacts.writer import LedgerWriter
from app.db.base import utcnow
from app.db.models import (
    Connection,
    ProblemKind,
    SyncRun,
    SyncRunStatus,
)
from app.inbox.repository import InboundEventRepository
from app.lifecycle.cancel import stopped
from app.resources import Resources
from app.syncs.classify import close_open_batch, process_page
from app.syncs.common import (
    READ_SLICE_S,
    batch_limit,
    default_language,
    fail_run,
    load_active_run,
    maybe_finalize,
    onoffice_failure,
    provider_failure,
    retry_or_fail_run,
)
from app.syncs.decide import DEFERRED
from app.syncs.jobs import enqueue_provider_read, enqueue_read
from app.syncs.persons import PagePersons
from app.syncs.repository import SyncRepository
from app.worker.priority import give_way
from onoffice_client.models import OnOfficeError, OnOfficeTransientError
from providers._paging import ordered_pages
from providers.base import (
    ProviderContact,
    ProviderError,
    ProviderTransientError,
)

STATE_PAGE = 1000  # provider members stored per transaction


async def read(resources: Resources, run_id: int, *, job_try: int = 1, max_tries: int = 10) -> None:
    loaded = await load_active_run(resources, run_id)
    if loaded is None:
        return
    run, connection, tenant = loaded
    if run.reading_done:
        await maybe_finalize(resources, run_id)
        return
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        if run.status == SyncRunStatus.queued:
            await repo.set_run(
                run_id, status=SyncRunStatus.running, phase="reading", started_at=utcnow()
            )
    if not run.provider_read_done:
        try:
            finished = await read_provider_state(resources, run, connection)
        except ProviderTransientError as exc:
            message = provider_failure(connection, exc)
            await retry_or_fail_run(
                resources, run_id, exc, message, job_try=job_try, max_tries=max_tries
            )
            return
        except ProviderError as exc:
            await fail_run(resources, run_id, provider_failure(connection, exc))
            return
        if not finished:
            return  # a continuation job goes on
    onoffice = onoffice_for_connection(resources, tenant, connection)
    language = default_language(connection)
    limit = batch_limit(resources, connection)
    async with resources.sessionmaker() as session:
        held_back = await InboundEventRepository.from_session(session).pending_opt_outs(
            connection.id
        )
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    # Once the first page told the total, the next pages are read ONOFFICE_READ_CONCURRENCY at
    # a time while earlier ones are classified; pages are processed strictly in offset (KdNr)
    # order, so the duplicate rule stays exact and `read_offset` only covers processed pages.
    # Past the slice's deadline no further page is requested; those in flight are processed.
    persons = PagePersons(onoffice)  # each page's person read rides on a later page's request
    pages = ordered_pages(
        persons.fetch,
        page_size=onoffice.page_size,
        concurrency=resources.settings.ONOFFICE_READ_CONCURRENCY,
        start=run.read_offset,
        stop=lambda: time.monotonic() > deadline,
    )
    done = False
    offset = run.read_offset
    try:
        async for at, read_page, total in pages:
            if await stopped(resources, run_id):
                return  # cancelled: no further page is classified or sent
            await give_way(resources)  # other tenants' interactive jobs first
            next_offset = at + len(read_page)
            done = len(read_page) < onoffice.page_size or (
                total is not None and next_offset >= total
            )
            # Paging counts what onOffice returned; only the connection's scope is synced.
            page = onoffice.in_scope(read_page)
            others = await persons.take(at, page)
            async with resources.transaction() as session:
                repo = SyncRepository.from_session(session)
                await process_page(
                    session,
                    run_id,
                    connection,
                    page,
                    language,
                    force=run.force,
                    batch_limit=limit,
                    held_back=held_back,
                    list_state_known=True,
                    others=others,
                    defer_write_backs=True,
                )
                if done:
                    await close_open_batch(repo, run_id)
                    await write_back_deferred(session, run_id, connection)
                # Counted in onOffice's total but not synced (processed + out_of_scope =
                # cntabsolute, one of the rules of `reconciled`).
                await repo.increment(run_id, out_of_scope=len(read_page) - len(page))
                await repo.set_run(
                    run_id,
                    read_offset=next_offset,
                    reading_done=done,
                    **({"addresses_total": total} if total is not None else {}),
                )
            offset = next_offset
            if done:
                break
    except OnOfficeError as exc:
        transient = isinstance(exc, OnOfficeTransientError)
        await retry_or_fail_run(
            resources, run_id, exc, onoffice_failure(exc),
            transient=transient, job_try=job_try, max_tries=max_tries,
        )  # fmt: skip
        return
    finally:
        await pages.aclose()  # cancels the pages still in flight
        await persons.close()  # the person reads still to be sent in the background
    if not done:
        async with resources.transaction():
            enqueue_read(run_id, offset)
        return
    await maybe_finalize(resources, run_id)


async def write_back_deferred(session: Any, run_id: int, connection: Connection) -> int:
    """The person write-backs `process_page` deferred for this run (see there), started now:
    for each marked problem, the ledger's person signal if it is still an opt-out (the
    incremental push may have seen a newer Yes meanwhile). Idempotent (deduplicated events)."""
    repo = SyncRepository.from_session(session)
    marked: dict[str, int] = {}
    after = 0
    while rows := await repo.problems(run_id, after_id=after, kind=ProblemKind.opted_out):
        after = rows[-1].id
        for problem in rows:
            params = problem.reason_params or {}
            if params.get(DEFERRED) and params.get("address") is not None:
                marked[problem.email] = int(params["address"])
    ledger = await ContactRepository.from_session(session).ledger_rows(connection.id, marked)
    writer = LedgerWriter.for_run(connection, run_id)
    started = 0
    for email, carrier in marked.items():
        row = ledger.get(email)
        if row is None or row.onoffice_status not in EXPLICIT_NO:
            continue
        signal = Signal(row.onoffice_status, aware(row.onoffice_changed_at))
        writer.person_opted_out(email, carrier, signal)
        started += 1
    await writer.save(session)
    return started


async def read_provider_state(resources: Resources, run: SyncRun, connection: Connection) -> bool:
    """Read the provider's list state (status, last change, tags) into `provider_member`, in
    resumable time slices; the one pass over the audience per run, used to decide every
    contact and to pull tags back. Pages are read `PROVIDER_READ_CONCURRENCY` at a time (each
    request within the key's shared limits: Mailchimp's 10 connections, Brevo's 10/s) and
    stored in offset order, so `provider_offset` only covers stored pages. Returns False when
    a continuation job takes over."""
    assert connection.list_id is not None
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(run.id, phase="provider")
    provider = provider_for_connection(resources, connection)
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    offset = run.provider_offset

    async def store(page: Sequence[ProviderContact], new_offset: int) -> None:
        ledger = LedgerWriter.for_run(connection, run.id)
        ledger.listed([member_row(member) for member in page])
        async with resources.transaction() as session:
            await ledger.save(session)
            await SyncRepository.from_session(session).set_run(run.id, provider_offset=new_offset)

    stopped_early = False

    def stop() -> bool:
        # Asked only while pages remain to be requested: True means the read is unfinished.
        nonlocal stopped_early
        stopped_early = stopped_early or time.monotonic() > deadline
        return stopped_early

    async with resources.sessionmaker() as session:
        contacts = ContactRepository.from_session(session)
        # The list's likely size: what its last read stored, or what the ledger expects to be
        # subscribed there (after a first sync into an empty list the last read stored nothing).
        known = max(
            await contacts.count_members(connection.id),
            await contacts.count_subscribed(connection.id),
        )
    pages = provider.iter_list_state(
        connection.list_id,
        concurrency=resources.settings.PROVIDER_READ_CONCURRENCY,
        start=offset,
        # Its pages are requested together with the first (one round trip less).
        expected_total=known or None,
        # Past the slice's deadline no further page is requested; those in flight are stored.
        stop=stop,
    )
    try:
        async for chunk in pages:
            if await stopped(resources, run.id):
                return False  # cancelled: the read ends here
            # A page shorter than the page size in the middle (members removed meanwhile) makes
            # the stored offset lag behind: a resumed read then reads some members again.
            offset += len(chunk)
            await store(chunk, offset)
        if stopped_early:
            async with resources.transaction():
                enqueue_provider_read(run.id, offset)
            return False
    finally:
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()  # cancels the pages still in flight
    # Archived members are hidden from the normal listing (Mailchimp): one more, short read.
    page: list[ProviderContact] = []
    async for member in provider.iter_contacts(connection.list_id, archived=True):
        page.append(member)
        if len(page) >= STATE_PAGE:
            await store(page, offset)
            page = []
    await store(page, offset)
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(
            run.id, provider_read_done=True, phase="reading"
        )
    return True


def member_row(member: ProviderContact) -> dict[str, Any]:
    return {
        "email": normalise_email(member.email),
        "status": (member.status or "unknown")[:16],
        "changed_at": member.last_changed,
        "tags": list(member.tags),
        "provider_id": member.provider_id,
    }
