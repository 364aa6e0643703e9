"""The full sync: read onOffice pages, classify every address, fan out provider batches.

Shape of a run (every step is a short, idempotent job; state lives in the database):

* `sync.read` reads onOffice pages from `sync_run.read_offset` for a time slice, then re-enqueues
  itself. Each page is one transaction: problems recorded, duplicates resolved against the
  `contact` table (state in the database, so a million addresses need no memory), unchanged
  contacts counted, the rest written into one `sync_batch` whose job is enqueued after commit.
* `sync.upsert_batch` sends one batch through the provider's bulk upsert and records one outcome
  per address in the same transaction that marks the batch done; a retried job finds the batch
  done and sends nothing.
* `sync.finalize` runs once reading is done and every batch finished: Mailchimp tags flow back to
  onOffice, then the run is completed. The counts reconcile by construction: every address read
  ends in exactly one counter.

Duplicate rule: the first address in onOffice read order (the client's stable sort) keeps the
email; every later address with the same normalised email is reported as a duplicate of it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from arq.worker import Retry

from app.connections.errors import PROVIDER_LABELS, STATUS_PAGES
from app.connections.factory import (
    onoffice_for_tenant,
    provider_for_connection,
    supports_tags,
    sync_batch_size,
)
from app.connections.repository import ConnectionRepository
from app.contacts.ledger import write_back_opt_out
from app.contacts.repository import ContactRepository, provider_signal
from app.contacts.rules import (
    SUBSCRIBED,
    TIE,
    Action,
    Signal,
    aware,
    decide_yes,
    is_opt_out,
    observe_onoffice,
)
from app.contacts.values import (
    Language,
    check_email,
    contact_from_address,
    contact_hash,
    normalise_email,
)
from app.db.base import utcnow
from app.db.models import (
    Connection,
    Contact,
    ProblemKind,
    SyncBatch,
    SyncRun,
    SyncRunStatus,
    Tenant,
)
from app.i18n import encode, reasons
from app.metrics import CONTACTS_SYNCED, SYNC_RUNS
from app.resources import Resources
from app.syncs.optouts import recent_opt_outs
from app.syncs.repository import ACTIVE_STATUSES, SyncRepository
from app.syncs.tags import flush_tags
from app.worker.queue import compute_backoff, enqueue_job
from onoffice_client.models import Address, AddressUpdate, OnOfficeError, OnOfficeTransientError
from providers._paging import ordered_pages
from providers.base import (
    ContactData,
    FieldMapping,
    ProviderContact,
    ProviderError,
    ProviderRequestError,
    ProviderTransientError,
    UpsertOutcome,
    UpsertResult,
)

log = logging.getLogger(__name__)

# One read job's share of the pages (at most a third of the job timeout): short jobs keep crash
# recovery fast, because arq re-runs a dead worker's job only after its timeout.
READ_SLICE_S = 20.0
EXCLUDED_PULL_TAGS = {"onoffice"}
TAG_WRITE_CHUNK = 50
TAG_PAGE = 1000
STALE_CHUNK = 100
STALE_MIN = 5  # the safety valve never blocks fewer than this many unsubscribes
STALE_SHARE = 0.2  # it holds them back above this share of the synced contacts
SHRINK_SHARE = 0.5  # or when onOffice answers with fewer newsletter addresses than this share
STATE_PAGE = 1000  # provider members stored per transaction


def read_job_id(run_id: int, offset: int) -> str:
    return f"sync.read:{run_id}:{offset}"


def batch_job_id(run_id: int, batch_no: int) -> str:
    return f"sync.upsert:{run_id}:{batch_no}"


def finalize_job_id(run_id: int) -> str:
    return f"sync.finalize:{run_id}"


def batch_limit(resources: Resources, connection: Connection) -> int:
    """Contacts per provider job (the provider's choice, see the factory)."""
    return sync_batch_size(resources.settings, connection.provider)


def default_language(connection: Connection) -> Language:
    return (
        Language.en if (connection.account_language or "").lower().startswith("en") else Language.de
    )


async def _load(resources: Resources, run_id: int) -> tuple[SyncRun, Connection, Tenant] | None:
    async with resources.sessionmaker() as session:
        run = await SyncRepository.from_session(session).get_run(run_id)
        if run is None:
            return None
        connection, tenant = await ConnectionRepository.from_session(session).with_tenant(
            run.connection_id
        )
        if connection is None or tenant is None:
            return None
        return run, connection, tenant


# -------------------------------------------------------------------------------------------------
# Reading onOffice
# -------------------------------------------------------------------------------------------------


async def read(resources: Resources, run_id: int, *, job_try: int = 1, max_tries: int = 10) -> None:
    loaded = await _load(resources, run_id)
    if loaded is None:
        return
    run, connection, tenant = loaded
    if run.status not in ACTIVE_STATUSES:
        return
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
            if job_try < max_tries:
                raise Retry(defer=max(compute_backoff(job_try), exc.retry_after or 0)) from exc
            await fail_run(resources, run_id, _provider_failure(connection, exc))
            return
        except ProviderError as exc:
            await fail_run(resources, run_id, _provider_failure(connection, exc))
            return
        if not finished:
            return  # a continuation job goes on
    onoffice = onoffice_for_tenant(resources, tenant)
    language = default_language(connection)
    limit = batch_limit(resources, connection)
    async with resources.sessionmaker() as session:
        held_back = await ContactRepository.from_session(session).pending_opt_outs(connection.id)
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    # Once the first page told the total, the next pages are read ONOFFICE_READ_CONCURRENCY at
    # a time while earlier ones are classified; pages are processed strictly in offset (KdNr)
    # order, so the duplicate rule stays exact and `read_offset` only covers processed pages.
    # Past the slice's deadline no further page is requested; those in flight are processed.
    pages = ordered_pages(
        onoffice.read_newsletter_page,
        page_size=onoffice.page_size,
        concurrency=resources.settings.ONOFFICE_READ_CONCURRENCY,
        start=run.read_offset,
        stop=lambda: time.monotonic() > deadline,
    )
    done = False
    offset = run.read_offset
    try:
        async for at, page, total in pages:
            next_offset = at + len(page)
            done = len(page) < onoffice.page_size or (total is not None and next_offset >= total)
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
                )
                if done:
                    await close_open_batch(repo, run_id)
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
        if transient and job_try < max_tries:
            raise Retry(defer=compute_backoff(job_try)) from exc
        await fail_run(resources, run_id, _onoffice_failure(exc))
        return
    finally:
        await pages.aclose()  # cancels the pages still in flight
    if not done:
        async with resources.transaction():
            enqueue_job("sync.read", _job_id=read_job_id(run_id, offset), run_id=run_id)
        return
    await maybe_finalize(resources, run_id)


def _provider_failure(connection: Connection, exc: ProviderError) -> str:
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    return (
        f"{label}: the list could not be read ({exc.message}); "
        f"see {STATUS_PAGES.get(connection.provider, '')} and start the sync again."
    )


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
        rows = [_member_row(member) for member in page]
        async with resources.transaction() as session:
            await ContactRepository.from_session(session).store_members(connection.id, run.id, rows)
            await SyncRepository.from_session(session).set_run(run.id, provider_offset=new_offset)

    stopped_early = False

    def stop() -> bool:
        # Asked only while pages remain to be requested: True means the read is unfinished.
        nonlocal stopped_early
        stopped_early = stopped_early or time.monotonic() > deadline
        return stopped_early

    async with resources.sessionmaker() as session:
        known = await ContactRepository.from_session(session).count_members(connection.id)
    pages = provider.iter_list_state(
        connection.list_id,
        concurrency=resources.settings.PROVIDER_READ_CONCURRENCY,
        start=offset,
        # The list's size at the last read: its pages are requested together with the first.
        expected_total=known or None,
        # Past the slice's deadline no further page is requested; those in flight are stored.
        stop=stop,
    )
    try:
        async for chunk in pages:
            # A page shorter than the page size in the middle (members removed meanwhile) makes
            # the stored offset lag behind: a resumed read then reads some members again.
            offset += len(chunk)
            await store(chunk, offset)
        if stopped_early:
            async with resources.transaction():
                enqueue_job(
                    "sync.read", _job_id=f"{read_job_id(run.id, 0)}:p{offset}", run_id=run.id
                )
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


def _member_row(member: ProviderContact) -> dict[str, Any]:
    return {
        "email": normalise_email(member.email),
        "status": (member.status or "unknown")[:16],
        "changed_at": member.last_changed,
        "tags": list(member.tags),
        "provider_id": member.provider_id,
    }


def _onoffice_failure(exc: OnOfficeError) -> str:
    return encode("run.onoffice_failed", detail=exc.message, status_page=STATUS_PAGES["onoffice"])


async def process_page(
    session: Any,
    run_id: int,
    connection: Connection,
    page: Sequence[Address],
    language: Language,
    *,
    force: bool = False,
    batch_limit: int = 500,
    held_back: frozenset[str] = frozenset(),
    list_state_known: bool = False,
) -> None:
    """Classify one page of addresses and queue what must be sent.

    Every address gets exactly one outcome. What to send is decided by the consent rule
    (`app.contacts.rules.decide_yes`) from the ledger and this run's read of the provider's
    list (`list_state_known`: a contact missing from it or not subscribed there is resent even
    when its values are unchanged)."""
    repo = SyncRepository.from_session(session)
    contacts = ContactRepository.from_session(session)
    now = utcnow()
    # Pages can overlap (a resumed read, records moving between pages): an address this run
    # already handled is skipped. Problems are found by (run, address); synced addresses by
    # their contact row below, which is fetched by email anyway (no query whose plan depends
    # on table statistics: a fresh, unanalysed contact table made that one O(contacts)).
    seen = await repo.problem_addresses(run_id, [a.id for a in page])
    fresh = [a for a in page if a.id not in seen]
    problems: list[dict[str, Any]] = []
    candidates: list[tuple[Address, str]] = []
    invalid = missing = 0
    for address in fresh:
        check = check_email(address.email)
        if check.problem is not None:
            problems.append(_problem(run_id, address, check.problem, check.reason, code=check.code))
            if check.problem == ProblemKind.missing_email:
                missing += 1
            else:
                invalid += 1
            continue
        candidates.append((address, check.email))

    emails = [email for _, email in candidates]
    existing = await contacts.by_emails(connection.id, emails)
    members = await contacts.members(connection.id, run_id, emails) if list_state_known else {}
    owners: dict[str, int] = {}
    to_send: list[dict[str, Any]] = []
    counts = {"duplicates": 0, "unchanged": 0, "rejected": 0}
    counts |= {"opted_out": 0, "pending_optin": 0, "bounced": 0}
    already_synced = 0
    touched: list[int] = []
    write_backs: list[tuple[str, Signal]] = []
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    for address, email in candidates:
        row = existing.get(email)
        if row is not None and row.last_run_id == run_id and row.address_id == address.id:
            already_synced += 1  # handled by an earlier page of this run
            continue
        owner = owners.get(email)
        if owner is None and row is not None and row.last_run_id == run_id:
            owner = row.address_id
        if owner is not None and owner != address.id:
            counts["duplicates"] += 1
            problems.append(
                _problem(
                    run_id,
                    address,
                    ProblemKind.duplicate,
                    f"same email as address {owner}",
                    code=reasons.DUPLICATE,
                    params={"owner": owner},
                )
            )
            continue
        owners[email] = address.id
        member = members.get(email)
        onoffice = observe_onoffice(
            row.onoffice_status if row else None,
            row.onoffice_changed_at if row else None,
            "yes",
            now,
        )
        provider = provider_signal(row, member)
        action = decide_yes(onoffice, provider)
        if row is None:
            row = Contact(
                connection_id=connection.id,
                address_id=address.id,
                email=email,
                tags=[],
                last_run_id=run_id,
            )
            contacts.add(row)
            existing[email] = row
        elif row.address_id == address.id:
            touched.append(row.id)  # one UPDATE for the page instead of one per contact
        else:
            row.address_id = address.id
            row.last_run_id = run_id
        if (row.onoffice_status, row.onoffice_changed_at) != (onoffice.status, onoffice.at):
            row.onoffice_status, row.onoffice_changed_at = onoffice.status, onoffice.at
        if email in held_back:
            # The person opted out at the provider and onOffice does not know yet: sending
            # "subscribed" now would undo it (the lost-unsubscribe problem).
            counts["opted_out"] += 1
            row.subscribed = False
            reason = f"opted out at {label}; the change is being written to onOffice"
            problems.append(
                _problem(
                    run_id,
                    address,
                    ProblemKind.opted_out,
                    reason,
                    email,
                    code=reasons.HELD_BACK_UNSUBSCRIBED,
                )
            )
            continue
        if action in (Action.write_back, Action.bounced):
            assert provider.status is not None
            row.provider_status, row.provider_changed_at = provider.status, provider.at
            row.subscribed = False
            write_backs.append((email, provider))
            when = f" ({provider.at:%Y-%m-%d %H:%M} UTC)" if provider.at else ""
            params = {"provider": label, "when": when}
            gone = provider.status in ("archived", "deleted")
            if action == Action.bounced:
                counts["bounced"] += 1
                kind, code = ProblemKind.bounced, reasons.BOUNCED_PROVIDER
            else:
                counts["opted_out"] += 1
                kind = ProblemKind.opted_out
                code = reasons.REMOVED_PROVIDER if gone else reasons.OPTED_OUT_PROVIDER
            reason = f"{provider.status} at {label}{when}"
            problems.append(
                _problem(run_id, address, kind, reason, email, code=code, params=params)
            )
            continue
        if action == Action.pending:
            counts["pending_optin"] += 1
            reason = f"waiting for the double opt-in confirmation at {label}"
            problems.append(
                _problem(
                    run_id,
                    address,
                    ProblemKind.pending_optin,
                    reason,
                    email,
                    code=reasons.PENDING_OPTIN,
                    params={"provider": label},
                )
            )
            continue
        contact = contact_from_address(address, email, language)
        fingerprint = contact_hash(contact)
        previous_tags = sorted(row.tags or []) if row.synced_hash else []
        at_provider = not list_state_known or (member is not None and member.status == SUBSCRIBED)
        if (
            not force
            and action == Action.send
            and at_provider
            and row.synced_hash == fingerprint
            and previous_tags == contact.tags
        ):
            counts["unchanged"] += 1
            continue
        if (
            not force
            and action == Action.send
            and row.rejected_hash == rejection_hash(fingerprint, contact.tags)
        ):
            # Rejected before with these very values: sending again would fail the same way.
            counts["rejected"] += 1
            reason = f"{row.rejected_reason} (unchanged since the last attempt)"
            code = reasons.provider_reason(row.rejected_reason)
            problems.append(
                _problem(
                    run_id,
                    address,
                    ProblemKind.rejected,
                    reason,
                    email,
                    code=code,
                    params={"repeat": True},
                )
            )
            continue
        removed = sorted(set(previous_tags) - set(contact.tags))
        contact.resubscribe = action == Action.resubscribe
        to_send.append(
            contact.model_dump()
            | {"hash": fingerprint, "address_id": address.id, "removed_tags": removed}
        )
    await contacts.flush()
    await contacts.claim(touched, run_id)
    await repo.add_problems(problems)
    for email, signal in write_backs:
        await write_back_opt_out(session, connection.provider, connection.id, email, signal)
    await repo.increment(
        run_id,
        addresses_read=len(page),
        onoffice_newsletter_total=len(fresh) - already_synced,
        invalid_emails=invalid,
        missing_emails=missing,
        **counts,
    )
    if to_send:
        await add_to_open_batch(repo, run_id, to_send, batch_limit)


async def add_to_open_batch(
    repo: SyncRepository, run_id: int, to_send: list[dict[str, Any]], limit: int
) -> None:
    """Store the page's contacts as a chunk of the open batch; close batches that are full."""
    _closed, _chunks, open_size = await repo.run_state(run_id)
    if open_size and open_size + len(to_send) > limit:
        await close_open_batch(repo, run_id)
    batch_no, chunk_no, open_size = await repo.run_state(run_id)
    repo.add_batch(
        SyncBatch(
            run_id=run_id,
            chunk_no=chunk_no,
            batch_no=batch_no,
            size=len(to_send),
            payload=to_send,
        )
    )
    await repo.increment(run_id, chunks_total=1, open_batch_size=len(to_send))
    if open_size + len(to_send) >= limit:
        await close_open_batch(repo, run_id)


async def close_open_batch(repo: SyncRepository, run_id: int) -> None:
    """Hand the open batch to a job (sent after this transaction commits)."""
    batch_no, _chunks, open_size = await repo.run_state(run_id)
    if not open_size:
        return
    await repo.set_run(run_id, open_batch_size=0)
    await repo.increment(run_id, batches_total=1)
    enqueue_job(
        "sync.upsert_batch",
        _job_id=batch_job_id(run_id, batch_no),
        run_id=run_id,
        batch_no=batch_no,
    )


def rejection_hash(fingerprint: str, tags: Sequence[str]) -> str:
    return hashlib.sha256(f"{fingerprint}|{'|'.join(sorted(tags))}".encode()).hexdigest()


def _problem(
    run_id: int,
    address: Address,
    kind: str,
    reason: str,
    email: str | None = None,
    *,
    code: str = "",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "address_id": address.id,
        "email": email if email is not None else address.email.strip(),
        "kind": str(kind),
        "reason": reason,
        "reason_code": code,
        "reason_params": params,
        "created_at": utcnow(),
    }


# -------------------------------------------------------------------------------------------------
# Provider batches
# -------------------------------------------------------------------------------------------------


async def upsert_batch(
    resources: Resources, run_id: int, batch_no: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    loaded = await _load(resources, run_id)
    if loaded is None:
        return
    run, connection, _tenant = loaded
    if run.status not in ACTIVE_STATUSES:
        return
    async with resources.sessionmaker() as session:
        chunks = await SyncRepository.from_session(session).pending_chunks(run_id, batch_no)
    if not chunks:
        return  # already applied by an earlier try: never send twice
    payload = [item for chunk in chunks for item in chunk.payload]
    # Re-check consent now, not only when the batch was built: an opt-out that arrived since
    # (a webhook stored or applied meanwhile) is never overwritten by this batch.
    async with resources.sessionmaker() as session:
        repo = ContactRepository.from_session(session)
        emails = [item["email"] for item in payload]
        pending = await repo.pending_opt_outs(connection.id, emails)
        ledger = await repo.by_emails(connection.id, emails)
    withdrawn = {
        item["email"]
        for item in payload
        if item["email"] in pending
        or (
            not item.get("resubscribe")
            and is_opt_out(
                ledger[item["email"]].provider_status if item["email"] in ledger else None
            )
        )
    }
    contacts = [
        ContactData.model_validate({k: v for k, v in item.items() if k in ContactData.model_fields})
        for item in payload
        if item["email"] not in withdrawn
    ]
    provider = provider_for_connection(resources, connection)
    mapping = FieldMapping.model_validate(connection.field_mapping or {})
    assert connection.list_id is not None
    try:
        # And at the provider: an opt-out since the list was read whose webhook is late or
        # lost (Mailchimp's batch subscribe would set such a member back to subscribed).
        started = aware(run.started_at) or utcnow()
        withdrawn |= await recent_opt_outs(
            resources, run_id, started, started - TIE, provider, connection.list_id
        ) & set(emails)
        contacts = [c for c in contacts if c.email not in withdrawn]
        # Tags are not added per batch: the members a tag still lacks are recorded with the
        # batch's results and added 500 at a time across the run (app/syncs/tags.py).
        results = await provider.upsert_contacts(
            connection.list_id, contacts, mapping, defer_tags=provider.supports_tags
        )
        await _remove_tags(provider, connection.list_id, payload, results)
    except ProviderTransientError as exc:
        if job_try < max_tries:
            delay = max(compute_backoff(job_try), exc.retry_after or 0)
            raise Retry(defer=delay) from exc
        label = PROVIDER_LABELS.get(connection.provider, connection.provider)
        await fail_run(
            resources,
            run_id,
            encode(
                "run.provider_unreachable",
                provider=label,
                batch=batch_no,
                tries=job_try,
                detail=exc.message,
                status_page=STATUS_PAGES.get(connection.provider, ""),
            ),
        )
        return
    except ProviderRequestError as exc:
        # The provider refused the whole request: every contact of it is rejected, with the reason.
        results = [
            UpsertResult(email=c.email, outcome=UpsertOutcome.rejected, reason=exc.message)
            for c in contacts
        ]
    last = await apply_results(resources, run_id, batch_no, connection, payload, results, withdrawn)
    if last:
        return  # sync.finalize adds the tags still waiting
    try:
        await flush_tags(resources, run_id, connection, provider, final=False)
    except ProviderError as exc:
        # The members stay recorded; a later batch or the end of the run adds them.
        log.warning("sync.tags_deferred", extra={"run_id": run_id, "error": exc.message})


async def _remove_tags(
    provider: Any, list_id: str, payload: Sequence[dict[str, Any]], results: Sequence[UpsertResult]
) -> None:
    """Tags removed in onOffice since the last sync are removed at the provider too (for the
    contacts that were sent and accepted; withdrawn ones have no result)."""
    if not provider.supports_tags:
        return
    by_email = {r.email: r for r in results}
    for item in payload:
        result = by_email.get(item["email"])
        if item.get("removed_tags") and result and result.outcome != UpsertOutcome.rejected:
            await provider.set_tags(list_id, item["email"], add=(), remove=item["removed_tags"])


async def apply_results(
    resources: Resources,
    run_id: int,
    batch_no: int,
    connection: Connection,
    payload: Sequence[dict[str, Any]],
    results: Sequence[UpsertResult],
    withdrawn: frozenset[str] | set[str] = frozenset(),
) -> bool:
    """Record one outcome per contact of the batch and mark it done; True when it was the
    run's last batch (sync.finalize is enqueued)."""
    by_email = {normalise_email(r.email): r for r in results}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "synced_unspecified": 0, "rejected": 0}
    counts["opted_out"] = 0
    problems: list[dict[str, Any]] = []
    tag_adds: list[dict[str, Any]] = []
    now = utcnow()
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        chunks = await repo.pending_chunks(run_id, batch_no)
        if not chunks:
            return False
        rows = await ContactRepository.from_session(session).by_emails(
            connection.id, (item["email"] for item in payload)
        )
        for item in payload:
            if item["email"] in withdrawn:
                counts["opted_out"] += 1
                problems.append(
                    {
                        "run_id": run_id,
                        "address_id": item["address_id"],
                        "email": item["email"],
                        "kind": ProblemKind.opted_out.value,
                        "reason": f"opted out at {label} while the sync ran; not sent",
                        "reason_code": reasons.OPTED_OUT_DURING_SYNC,
                        "reason_params": {"provider": label},
                        "created_at": now,
                    }
                )
                continue
            result = by_email.get(item["email"]) or UpsertResult(
                email=item["email"],
                outcome=UpsertOutcome.rejected,
                reason="the provider returned no result for this contact",
            )
            row = rows.get(item["email"])
            if result.outcome == UpsertOutcome.rejected:
                counts["rejected"] += 1
                problems.append(
                    {
                        "run_id": run_id,
                        "address_id": item["address_id"],
                        "email": item["email"],
                        "kind": ProblemKind.rejected.value,
                        "reason": result.reason or "rejected by the provider",
                        "reason_code": reasons.provider_reason(result.reason),
                        "reason_params": None,
                        "created_at": utcnow(),
                    }
                )
                if row is not None:
                    row.synced_hash = None
                    row.rejected_hash = rejection_hash(item["hash"], item.get("tags") or [])
                    row.rejected_reason = result.reason or "rejected by the provider"
                continue
            key = {
                UpsertOutcome.created: "created",
                UpsertOutcome.updated: "updated",
                UpsertOutcome.unchanged: "unchanged",
            }.get(result.outcome, "synced_unspecified")
            counts[key] += 1
            tag_adds.extend(
                {
                    "run_id": run_id,
                    "tag": tag,
                    "email": item["email"],
                    "address_id": item["address_id"],
                    "outcome": key,
                }
                for tag in result.missing_tags
            )
            if row is not None:
                row.synced_hash = item["hash"]
                row.rejected_hash = None
                row.rejected_reason = None
                row.tags = list(item.get("tags") or [])
                row.subscribed = True
                row.provider_status, row.provider_changed_at = SUBSCRIBED, now
                row.provider_id = result.provider_id or row.provider_id
        await repo.add_problems(problems)
        await repo.add_tag_adds(tag_adds)
        for chunk in chunks:
            chunk.status = "done"
            chunk.payload = []
        progress = await repo.increment(run_id, batches_done=1, **counts)
        provider = connection.provider
        for outcome, n in counts.items():
            if n:
                CONTACTS_SYNCED.labels(provider, outcome).inc(n)
        if progress.reading_done and progress.batches_done >= progress.batches_total:
            enqueue_job("sync.finalize", _job_id=finalize_job_id(run_id), run_id=run_id)
            return True
    return False


# -------------------------------------------------------------------------------------------------
# Completion
# -------------------------------------------------------------------------------------------------


async def maybe_finalize(resources: Resources, run_id: int) -> None:
    async with resources.transaction() as session:
        run = await SyncRepository.from_session(session).get_run(run_id)
        if (
            run is not None
            and run.status in ACTIVE_STATUSES
            and run.reading_done
            and run.batches_done >= run.batches_total
        ):
            enqueue_job("sync.finalize", _job_id=finalize_job_id(run_id), run_id=run_id)


def pull_job_id(run_id: int, start: int) -> str:
    return f"sync.pull_tags:{run_id}:{start}"


async def finalize(
    resources: Resources, run_id: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    """All batches are done: unsubscribe contacts that left onOffice's newsletter (safety
    valve), pull Mailchimp tags back (in slices), check the provider's count, complete."""
    loaded = await _load(resources, run_id)
    if loaded is None:
        return
    run, connection, _tenant = loaded
    if run.status not in ACTIVE_STATUSES or not run.reading_done:
        return
    if run.batches_done < run.batches_total:
        return
    if run.phase != "tags":
        try:
            provider = provider_for_connection(resources, connection)
            if await flush_tags(resources, run_id, connection, provider, final=True):
                # An earlier batch job is still adding some: wait for it (its rows are locked).
                raise Retry(defer=2.0)
            finished = await unsubscribe_stale(resources, run, connection)
        except ProviderTransientError as exc:
            if job_try < max_tries:
                raise Retry(defer=compute_backoff(job_try)) from exc
            await fail_run(resources, run_id, encode("run.unsubscribe_failed", detail=str(exc)))
            return
        if not finished:
            return  # a continuation job goes on
    if not supports_tags(connection.provider):  # no tags to pull back
        await complete_run(resources, run_id, connection)
        return
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(run_id, phase="tags")
        enqueue_job(
            "sync.pull_tags",
            _job_id=pull_job_id(run_id, run.tags_offset),
            run_id=run_id,
            start=run.tags_offset,
        )


async def safety_valve(resources: Resources, run: SyncRun, connection: Connection) -> str | None:
    """Why the stale unsubscribes of `run` look implausible (None: they are not).

    Held back when more than STALE_SHARE of the synced contacts (and at least STALE_MIN)
    would go at once, or when onOffice answered with fewer than SHRINK_SHARE of the newsletter
    addresses of the last completed run: both look like a broken onOffice answer, and a list
    must never be emptied by one."""
    async with resources.sessionmaker() as session:
        stale = await ContactRepository.from_session(session).count_stale(connection.id, run.id)
        current = await SyncRepository.from_session(session).get_run(run.id)
        previous = await SyncRepository.from_session(session).latest_completed_run(connection.id)
    if not stale or current is None:
        return None
    synced = current.created + current.updated + current.unchanged + current.synced_unspecified
    if stale >= STALE_MIN and stale > STALE_SHARE * (synced + stale):
        return (
            f"{stale} of {synced + stale} synced contacts are no longer newsletter Yes in "
            f"onOffice; the connector does not unsubscribe more than {STALE_SHARE:.0%} at once."
        )
    if (
        previous is not None
        and previous.id != run.id
        and previous.onoffice_newsletter_total >= STALE_MIN
        and current.onoffice_newsletter_total < SHRINK_SHARE * previous.onoffice_newsletter_total
    ):
        return (
            f"onOffice answered with {current.onoffice_newsletter_total} newsletter addresses, "
            f"far fewer than the {previous.onoffice_newsletter_total} of the last run."
        )
    return None


async def unsubscribe_stale(
    resources: Resources, run: SyncRun, connection: Connection, *, approved: bool = False
) -> bool:
    """onOffice is the master: contacts synced before whose address this run did not find
    among the newsletter-Yes addresses (set to No, archived, deleted, or the email removed) are
    unsubscribed at the provider, unless the safety valve holds them back (then only an
    approval of this run unsubscribes them). Returns False when a continuation job takes
    over (time slice)."""
    assert connection.list_id is not None
    if not approved and run.held_unsubscribes == 0:
        reason = await safety_valve(resources, run, connection)
        if reason is not None:
            async with resources.sessionmaker() as session:
                stale = await ContactRepository.from_session(session).count_stale(
                    connection.id, run.id
                )
            warning = (
                f"{reason} {stale} unsubscribes are held back: check onOffice, then approve "
                "them (POST /api/v1/syncs/{id}/approve-unsubscribes) or fix onOffice and sync "
                "again."
            ).replace("{id}", str(run.id))
            async with resources.transaction() as session:
                await SyncRepository.from_session(session).set_run(
                    run.id, warning=warning, held_unsubscribes=stale
                )
            log.warning("sync.stale_held_back", extra={"run_id": run.id, "stale": stale})
            return True
    elif not approved:
        return True  # held back by an earlier try of this step
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(run.id, phase="unsubscribing")
    provider = provider_for_connection(resources, connection)
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    while True:
        async with resources.sessionmaker() as session:
            rows = await ContactRepository.from_session(session).stale(
                connection.id, run.id, STALE_CHUNK
            )
        if not rows:
            return True
        done: list[int] = []
        for row in rows:
            try:
                await provider.set_subscription(connection.list_id, row.email, False)
            except ProviderRequestError as exc:
                log.warning(
                    "sync.unsubscribe_refused", extra={"run_id": run.id, "reason": exc.message}
                )
            done.append(row.id)
        now = utcnow()
        async with resources.transaction() as session:
            repo = ContactRepository.from_session(session)
            for contact_id in done:
                await repo.update(
                    contact_id,
                    subscribed=False,
                    provider_status="unsubscribed",
                    provider_changed_at=now,
                    onoffice_status="absent",
                    onoffice_changed_at=now,
                )
            await SyncRepository.from_session(session).increment(run.id, unsubscribed=len(done))
        if time.monotonic() > deadline:
            async with resources.transaction():
                enqueue_job(
                    "sync.finalize" if not approved else "sync.approve_unsubscribes",
                    _job_id=f"{finalize_job_id(run.id)}:stale:{time.time_ns()}",
                    run_id=run.id,
                )
            return False


async def approve_unsubscribes(resources: Resources, run_id: int, *, job_try: int = 1) -> None:
    """Carry out the unsubscribes the safety valve held back in `run_id` (nothing else is
    sent again)."""
    loaded = await _load(resources, run_id)
    if loaded is None:
        return
    run, connection, _tenant = loaded
    try:
        finished = await unsubscribe_stale(resources, run, connection, approved=True)
    except ProviderTransientError as exc:
        raise Retry(defer=compute_backoff(job_try)) from exc
    if finished:
        async with resources.transaction() as session:
            await SyncRepository.from_session(session).set_run(
                run_id, held_unsubscribes=0, warning=None, phase="done"
            )
        await check_drift(resources, run_id, connection)


async def check_drift(resources: Resources, run_id: int, connection: Connection) -> None:
    """Compare the provider's own count of subscribed contacts with what the ledger expects;
    the difference is the run's `drift` (0 = reconciled with the provider)."""
    assert connection.list_id is not None
    provider = provider_for_connection(resources, connection)
    try:
        counted = await provider.count_subscribed(connection.list_id)
    except ProviderError as exc:
        log.warning("sync.drift_unknown", extra={"run_id": run_id, "error": exc.message})
        return
    async with resources.transaction() as session:
        expected = await ContactRepository.from_session(session).count_subscribed(connection.id)
        await SyncRepository.from_session(session).set_run(
            run_id, provider_subscribed=counted, drift=counted - expected
        )


async def complete_run(resources: Resources, run_id: int, connection: Connection) -> None:
    await check_drift(resources, run_id, connection)
    async with resources.transaction() as session:
        await SyncRepository.from_session(session).set_run(
            run_id, status=SyncRunStatus.completed, phase="done", finished_at=utcnow()
        )
    SYNC_RUNS.labels("completed").inc()
    log.info("sync.completed", extra={"run_id": run_id})


async def pull_tags(
    resources: Resources, run_id: int, start: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    """Write Mailchimp tags (except `onoffice`) back to onOffice `NewsletterTag`, only where the
    set differs and only values onOffice knows (an unknown multiselect key would fail). Reads
    this run's copy of the list state (no second pass over the audience), in time slices that
    each continue after the stored member id."""
    loaded = await _load(resources, run_id)
    if loaded is None:
        return
    run, connection, tenant = loaded
    if run.status not in ACTIVE_STATUSES or run.phase != "tags" or run.tags_offset != start:
        return  # finished, failed, or a stale duplicate of an earlier slice
    assert connection.list_id is not None
    onoffice = onoffice_for_tenant(resources, tenant)
    provider = provider_for_connection(resources, connection)
    deadline = time.monotonic() + min(READ_SLICE_S, resources.settings.WORKER_JOB_TIMEOUT_S / 3)
    after = start
    try:
        allowed = await _allowed_tags(onoffice)
        while True:
            async with resources.sessionmaker() as session:
                page = await ContactRepository.from_session(session).member_page(
                    connection.id, run_id, after, TAG_PAGE
                )
            if not page:
                break
            after = await _pull_page(
                resources, run_id, connection, onoffice, provider, allowed, page
            )
            if time.monotonic() > deadline:
                async with resources.transaction():
                    enqueue_job(
                        "sync.pull_tags",
                        _job_id=pull_job_id(run_id, after),
                        run_id=run_id,
                        start=after,
                    )
                return
    except (ProviderTransientError, OnOfficeTransientError) as exc:
        if job_try < max_tries:
            raise Retry(defer=compute_backoff(job_try)) from exc
        await fail_run(resources, run_id, encode("run.tags_failed", detail=str(exc)))
        return
    except (ProviderError, OnOfficeError) as exc:
        await fail_run(resources, run_id, encode("run.tags_failed", detail=str(exc)))
        return
    await complete_run(resources, run_id, connection)


def canonical_tag(tag: str, allowed: dict[str, str] | None) -> str | None:
    """The one name of a tag in both directions: the onOffice `NewsletterTag` key (what the
    push sends). A Mailchimp tag typed as the key's label maps to the key; `onoffice` and tags
    onOffice does not know have none."""
    key = tag.strip().lower()
    if not key or key in EXCLUDED_PULL_TAGS:
        return None
    if allowed is None:
        return tag.strip()
    return allowed.get(key)


async def _pull_page(
    resources: Resources,
    run_id: int,
    connection: Connection,
    onoffice: Any,
    provider: Any,
    allowed: dict[str, str] | None,
    page: Sequence[Any],
) -> int:
    """Compare one page of members with what onOffice has; write differences; advance."""
    async with resources.sessionmaker() as session:
        rows = await ContactRepository.from_session(session).by_emails(
            connection.id, (m.email for m in page)
        )
    updates: list[tuple[str, int, list[str]]] = []
    renames: list[tuple[str, list[str], list[str]]] = []
    for member in page:
        row = rows.get(member.email)
        if row is None or row.last_run_id != run_id or not row.synced_hash:
            continue
        theirs: set[str] = set()
        aliases: list[str] = []
        for tag in member.tags:
            name = canonical_tag(tag, allowed)
            if name is None:
                continue
            theirs.add(name)
            if name != tag:
                aliases.append(tag)  # e.g. the label "Käufer" for the key "Kaeufer"
        ours = set(row.tags or [])
        if not theirs <= ours:
            updates.append((row.email, row.address_id, sorted(ours | theirs)))
        if aliases:
            renames.append((row.email, sorted(theirs - set(member.tags)), aliases))
    for begin in range(0, len(updates), TAG_WRITE_CHUNK):
        chunk = updates[begin : begin + TAG_WRITE_CHUNK]
        await onoffice.modify_addresses([(aid, AddressUpdate(tags=tags)) for _, aid, tags in chunk])
    assert connection.list_id is not None
    for email, add, remove in renames:
        # One name per tag: the alias is replaced by the canonical name at the provider, so
        # the next push does not add a second tag for the same thing.
        await provider.set_tags(connection.list_id, email, add=add, remove=remove)
    async with resources.transaction() as session:
        contacts = ContactRepository.from_session(session)
        stored = await contacts.by_emails(connection.id, (email for email, _, _ in updates))
        for email, _aid, tags in updates:
            if email in stored:
                await contacts.update(stored[email].id, tags=tags)
        new_offset = int(page[-1].id)
        repo = SyncRepository.from_session(session)
        await repo.increment(run_id, tags_pulled=len(updates))
        await repo.set_run(run_id, tags_offset=new_offset)
    return new_offset


async def _allowed_tags(onoffice: Any) -> dict[str, str] | None:
    """onOffice `NewsletterTag` keys by lower-cased key and label (tags are pushed as keys;
    a marketer may have typed the label in Mailchimp)."""
    try:
        fields = await onoffice.get_fields(["NewsletterTag"])
    except OnOfficeError:
        return None
    permitted = (fields.get("NewsletterTag") or {}).get("permittedvalues")
    if isinstance(permitted, list):
        permitted = {str(k): str(k) for k in permitted}
    if not isinstance(permitted, dict):
        return None
    keys: dict[str, str] = {}
    for key, label in permitted.items():
        keys[str(label).strip().lower()] = str(key)
    for key in permitted:
        keys[str(key).strip().lower()] = str(key)
    return keys


async def fail_run(resources: Resources, run_id: int, message: str) -> None:
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        unsent = await repo.unsent_tag_emails(run_id)
        run = await repo.get_run(run_id) if unsent else None
        if run is not None:
            # Sent without the tags they still lack: the next run sends them again.
            await ContactRepository.from_session(session).forget_synced(run.connection_id, unsent)
        await repo.set_run(
            run_id,
            status=SyncRunStatus.failed,
            phase="failed",
            finished_at=utcnow(),
            error=message,
        )
    SYNC_RUNS.labels("failed").inc()
    log.warning("sync.failed", extra={"run_id": run_id, "error": message})


async def resume_unfinished(resources: Resources, *, stale_after_s: float) -> int:
    """Re-enqueue the next steps of unfinished runs that made no progress for `stale_after_s`
    (a worker died, or the embedded server restarted). Job ids are deterministic, so a step
    that is still queued or running is not duplicated."""
    resumed = 0
    now = utcnow()
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        for run in await repo.unfinished_runs():
            updated = (
                run.updated_at if run.updated_at.tzinfo else run.updated_at.replace(tzinfo=UTC)
            )
            if (now - updated).total_seconds() < stale_after_s:
                continue
            resumed += 1
            for batch_no in await repo.pending_batch_numbers(run.id, run.batches_total):
                enqueue_job(
                    "sync.upsert_batch",
                    _job_id=batch_job_id(run.id, batch_no),
                    run_id=run.id,
                    batch_no=batch_no,
                )
            if not run.reading_done:
                enqueue_job(
                    "sync.read", _job_id=read_job_id(run.id, run.read_offset), run_id=run.id
                )
            elif run.batches_done >= run.batches_total:
                enqueue_job("sync.finalize", _job_id=finalize_job_id(run.id), run_id=run.id)
            log.info("sync.resumed", extra={"run_id": run.id, "offset": run.read_offset})
    return resumed
