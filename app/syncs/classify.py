"""Classifying one onOffice page: problems recorded, duplicates resolved against the `contact`
table, the consent rule applied (app.contacts.rules), unchanged contacts counted and the rest
written into the open `sync_batch`, whose job is enqueued after the commit. The decision itself
is the pure `app.syncs.decide.decide_page` (the preview decides through it too).

Duplicate rule: the first address in onOffice read order (the client's stable sort) keeps the
email; every later address with the same normalised email is reported as a duplicate of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.connections.errors import PROVIDER_LABELS
from app.contacts.repository import ContactRepository
from app.contacts.values import Language, check_email
from app.contacts.writer import LedgerWriter
from app.db.models import Connection, SyncBatch
from app.syncs.decide import decide_page
from app.syncs.jobs import enqueue_batch
from app.syncs.repository import SyncRepository
from onoffice_client.models import Address


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
    others: Mapping[str, Sequence[Address]] | None = None,
    defer_write_backs: bool = False,
) -> None:
    """Classify one page of addresses and queue what must be sent.

    Every address gets exactly one outcome. What happens to a person (an email with all its
    onOffice addresses: the page's and `others`, every address onOffice has with the page's
    emails, by normalised email) is planned by `app.contacts.person.plan_person` from the
    ledger and this run's read of the provider's list (`list_state_known`: a contact missing
    from it or not subscribed there is resent even when its values are unchanged); this
    function executes the plan. `defer_write_backs` (the paged read): a person's No for its
    other addresses is marked on the problem row and written after reading (`read.py`)."""
    repo = SyncRepository.from_session(session)
    contacts = ContactRepository.from_session(session)
    # Pages can overlap (a resumed read, records moving between pages): an address this run
    # already handled is skipped. Problems are found by (run, address); synced addresses by
    # their contact row below, which is fetched by email anyway (no query whose plan depends
    # on table statistics: a fresh, unanalysed contact table made that one O(contacts)).
    seen = await repo.problem_addresses(run_id, [a.id for a in page])
    fresh = [a for a in page if a.id not in seen]
    emails = [c.email for a in fresh if (c := check_email(a.email)).problem is None]
    # Plain rows, written for the whole page at once at the end (no ORM objects per row).
    await contacts.ensure_statistics()
    existing = await contacts.ledger_rows(connection.id, emails)
    members = (
        await contacts.member_states(connection.id, run_id, emails) if list_state_known else {}
    )
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    decision = decide_page(
        run_id,
        label,
        fresh,
        existing,
        members,
        others,
        language,
        force=force,
        held_back=held_back,
        list_state_known=list_state_known,
        defer_write_backs=defer_write_backs,
    )
    ledger = LedgerWriter.for_run(connection, run_id)
    ledger.decided(decision.touched, decision.history, decision.problems)
    for email, signal in decision.write_backs:
        ledger.opted_out(None, email, signal)
    for plan in decision.person_write_backs:
        assert plan.signal.carrier is not None
        ledger.person_opted_out(plan.email, plan.signal.carrier, plan.signal.signal)
    for plan in decision.push_later:
        assert plan.signal.carrier is not None
        ledger.push_later(connection.tenant_id, plan.signal.carrier, f"run:{run_id}")
    await ledger.save(session)
    await repo.increment(
        run_id,
        addresses_read=len(page),
        onoffice_newsletter_total=len(fresh) - decision.already_synced,
        **decision.counts,
    )
    if decision.to_send:
        await add_to_open_batch(repo, run_id, decision.to_send, batch_limit)


async def add_to_open_batch(
    repo: SyncRepository, run_id: int, to_send: list[dict[str, Any]], limit: int
) -> None:
    """Store the page's contacts in the open batch, filling it to `limit` (the rest of the page
    goes into the next one), and close batches that are full: a run costs ceil(contacts /
    limit) provider calls, not one per page (500 addresses make about 440 contacts to send)."""
    while to_send:
        batch_no, chunk_no, open_size = await repo.run_state(run_id)
        if open_size >= limit:  # the limit was lowered since the batch was opened
            await close_open_batch(repo, run_id)
            continue
        part, to_send = to_send[: limit - open_size], to_send[limit - open_size :]
        repo.add_batch(
            SyncBatch(
                run_id=run_id, chunk_no=chunk_no, batch_no=batch_no, size=len(part), payload=part
            )
        )
        await repo.increment(run_id, chunks_total=1, open_batch_size=len(part))
        if open_size + len(part) >= limit:
            await close_open_batch(repo, run_id)


async def close_open_batch(repo: SyncRepository, run_id: int) -> None:
    """Hand the open batch to a job (sent after this transaction commits)."""
    batch_no, _chunks, open_size = await repo.run_state(run_id)
    if not open_size:
        return
    await repo.set_run(run_id, open_batch_size=0)
    await repo.increment(run_id, batches_total=1)
    enqueue_batch(run_id, batch_no)
