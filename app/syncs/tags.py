"""Mailchimp tags of a full sync, added across the whole run rather than per batch.

A batch job sends its members without tags (`upsert_contacts(..., defer_tags=True)`) and
records, in the transaction that marks the batch done, one `sync_tag_add` row per tag a member
still lacks. Whenever a tag has `SEGMENT_SIZE` members waiting, one static-segment request adds
them; the end of the run (`sync.finalize`) adds the rest. So a run costs one segment call per
tag per 500 members that need it, whatever the number of batches.

Crash-safe and idempotent: rows are deleted in the transaction that sent them (a crash before
the commit sends them again, and adding a member to a segment twice changes nothing); rows are
taken with `FOR UPDATE SKIP LOCKED`, so two workers never send the same members.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.errors import PROVIDER_LABELS
from app.contacts.repository import ContactRepository
from app.contacts.writer import LedgerWriter
from app.db.models import Connection, SyncTagAdd
from app.resources import Resources
from app.syncs.repository import SyncRepository
from providers.base import NewsletterProvider

log = logging.getLogger(__name__)

SEGMENT_SIZE = 500  # members_to_add maximum of Mailchimp's static segment endpoint


async def flush_tags(
    resources: Resources,
    run_id: int,
    connection: Connection,
    provider: NewsletterProvider,
    *,
    final: bool,
) -> bool:
    """Add the waiting members of every tag with a full segment request (`final`: every
    waiting member). Raises ProviderTransientError when the provider is unavailable; what was
    not sent stays waiting. Returns True when members are still waiting (with `final`: rows
    another job holds while it sends them)."""
    if not provider.supports_tags:
        return False
    threshold = 1 if final else SEGMENT_SIZE
    while await _flush_round(resources, run_id, connection, provider, threshold):
        pass
    if not final:
        return False
    async with resources.sessionmaker() as session:
        return bool(await SyncRepository.from_session(session).tags_with_pending(run_id, 1))


async def _flush_round(
    resources: Resources,
    run_id: int,
    connection: Connection,
    provider: NewsletterProvider,
    threshold: int,
) -> bool:
    """One provider call for up to 500 waiting members of every tag with at least `threshold`
    waiting (so the tags' segment ids are looked up once, and their requests run at once
    within the key's connection limit). True when a tag may have more waiting."""
    assert connection.list_id is not None
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        claimed: list[SyncTagAdd] = []
        full = False
        for tag, waiting in (await repo.tags_with_pending(run_id, threshold)).items():
            # A savepoint per tag: rows taken but not sent are let go at once. A tag part of
            # whose rows another job is sending is left alone (sending the rest now would cost
            # an extra, partial segment request); the end of the run waits for that job.
            savepoint = await session.begin_nested()
            rows = await repo.claim_tag_adds(run_id, tag, SEGMENT_SIZE)
            if len(rows) < max(threshold, min(waiting, SEGMENT_SIZE)):
                await savepoint.rollback()
                continue
            await savepoint.commit()
            claimed.extend(rows)
            full = full or len(rows) >= SEGMENT_SIZE
        if not claimed:
            return False
        missing: dict[str, list[str]] = {}
        for row in claimed:
            missing.setdefault(row.email, []).append(row.tag)
        failures = await provider.add_tags(connection.list_id, missing)
        if failures:
            await _reject(session, run_id, connection, claimed, failures)
        await repo.delete_tag_adds([row.id for row in claimed])
        return full


async def _reject(
    session: AsyncSession,
    run_id: int,
    connection: Connection,
    rows: Sequence[SyncTagAdd],
    failures: dict[str, str],
) -> None:
    """Members whose tag could not be set (even through the member tags endpoint) move from
    their counter to `rejected`, with the reason, and are sent again by the next run."""
    repo = SyncRepository.from_session(session)
    contacts = ContactRepository.from_session(session)
    failed = [row for row in rows if row.email in failures]
    already = await repo.problem_addresses(run_id, [row.address_id for row in failed])
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    refused: list[SyncTagAdd] = []
    moved: dict[str, int] = {}
    for row in failed:
        if row.address_id in already:
            continue  # another of its tags failed first
        already.add(row.address_id)
        refused.append(row)
        moved[row.outcome] = moved.get(row.outcome, 0) - 1
    if not refused:
        return
    stored = await contacts.by_emails(connection.id, (row.email for row in refused))
    ledger = LedgerWriter.for_run(connection, run_id)
    for row in refused:
        detail = failures[row.email]
        ledger.tags_refused(stored.get(row.email), row.address_id, row.email, detail, label)
    await ledger.save(session)
    await repo.increment(run_id, rejected=len(refused), **moved)
    log.warning("sync.tags_refused", extra={"run_id": run_id, "provider": label})
