"""Step 2 (`sync.upsert_batch`): one batch through the provider's bulk upsert, one outcome per
address recorded in the same transaction that marks the batch done (a retried job finds the batch
done and sends nothing). Opt-outs heard since the list read are withdrawn first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from app.connections.errors import PROVIDER_LABELS, STATUS_PAGES
from app.connections.factory import (
    provider_for_connection,
)
from app.contacts.counts import counted_as
from app.contacts.repository import ContactRepository
from app.contacts.rules import (
    TIE,
    aware,
    is_opt_out,
)
from app.contacts.tags import provider_tags_after, tags_to_send
from app.contacts.values import (
    normalise_email,
)
from app.contacts.writer import LedgerWriter
from app.db.base import utcnow
from app.db.models import Connection
from app.i18n import encode
from app.inbox.repository import InboundEventRepository
from app.lifecycle.cancel import stopped
from app.metrics import CONTACTS_SYNCED
from app.resources import Resources
from app.syncs.common import load_active_run, retry_or_fail_run
from app.syncs.decide import rejection_hash
from app.syncs.jobs import enqueue_finalize
from app.syncs.optouts import recent_opt_outs
from app.syncs.repository import SyncRepository
from app.syncs.resend import applied_before, record_attempt
from app.syncs.tags import flush_tags
from app.worker.priority import give_way
from providers.base import (
    ContactData,
    FieldMapping,
    ProviderError,
    ProviderRequestError,
    ProviderTransientError,
    RejectReason,
    UpsertOutcome,
    UpsertResult,
)

log = logging.getLogger(__name__)


async def upsert_batch(
    resources: Resources, run_id: int, batch_no: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    loaded = await load_active_run(resources, run_id)
    if loaded is None:
        return
    run, connection, _tenant = loaded
    async with resources.sessionmaker() as session:
        chunks = await SyncRepository.from_session(session).pending_chunks(run_id, batch_no)
    if not chunks:
        return  # already applied by an earlier try: never send twice
    await give_way(resources)  # other tenants' interactive jobs first
    payload = [item for chunk in chunks for item in chunk.payload]
    # Re-check consent now, not only when the batch was built: an opt-out that arrived since
    # (a webhook stored or applied meanwhile) is never overwritten by this batch.
    async with resources.sessionmaker() as session:
        repo = ContactRepository.from_session(session)
        emails = [item["email"] for item in payload]
        pending = await InboundEventRepository.from_session(session).pending_opt_outs(
            connection.id, emails
        )
        ledger = await repo.ledger_rows(connection.id, emails)
        members = await repo.member_tags(connection.id, run_id, emails)
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
    if provider.supports_tags:
        # Tags by three-way merge (app.contacts.tags): a tag removed at the provider since
        # the last sync is not added back.
        for contact in contacts:
            row = ledger.get(contact.email)
            base = row.tags if row is not None and row.synced_hash else None
            contact.tags = tags_to_send(base, contact.tags, members.get(contact.email))
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
        if await stopped(resources, run_id):
            return  # cancelled: this batch is not sent (its chunks stay unsent)
        # Tags are not added per batch: the members a tag still lacks are recorded with the
        # batch's results and added 500 at a time across the run (app/syncs/tags.py).
        # A batch sent before whose results were never recorded: what it wrote is not resent.
        sent_before = await record_attempt(resources, run_id, batch_no, chunks)
        done = await applied_before(provider, connection.list_id, contacts, sent_before)
        results = list(done.values())
        if rest := [c for c in contacts if normalise_email(c.email) not in done]:
            results += await provider.upsert_contacts(
                connection.list_id, rest, mapping, defer_tags=provider.supports_tags
            )
        if done:
            log.info(
                "sync.batch_checked",
                extra={
                    "run_id": run_id,
                    "batch": batch_no,
                    "not_resent": len(done),
                    "resent": len(rest),
                },
            )
        await _remove_tags(provider, connection.list_id, payload, results)
    except ProviderTransientError as exc:
        message = encode(
            "run.provider_unreachable",
            provider=PROVIDER_LABELS.get(connection.provider, connection.provider),
            batch=batch_no,
            tries=job_try,
            detail=exc.message,
            status_page=STATUS_PAGES.get(connection.provider, ""),
        )
        await retry_or_fail_run(
            resources, run_id, exc, message, job_try=job_try, max_tries=max_tries
        )
        return
    except ProviderRequestError as exc:
        # The provider refused the whole request: every contact of it is rejected, with the reason.
        code = RejectReason.invalid_request
        results = [UpsertResult.refused(c.email, code, exc.message) for c in contacts]
    # The tags the batch left on members of this run's list state (for the tag pull-back).
    accepted = {normalise_email(r.email) for r in results if r.outcome != UpsertOutcome.rejected}
    removed = {item["email"]: item.get("removed_tags") or [] for item in payload}
    after: dict[str, list[str]] = {}
    for contact in contacts:
        raw = members.get(contact.email)
        if raw is not None and contact.email in accepted:
            tags = provider_tags_after(raw, removed.get(contact.email, []), contact.tags)
            if tags != raw:
                after[contact.email] = tags
    last = await apply_results(
        resources, run_id, batch_no, connection, payload, results, withdrawn, member_tags=after
    )
    if last or await stopped(resources, run_id):
        return  # sync.finalize adds the tags still waiting (a cancelled run: none)
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
    *,
    member_tags: dict[str, list[str]] | None = None,
) -> bool:
    """Record one outcome per contact of the batch and mark it done (and, in
    `member_tags`, the tags the batch left on members of this run's list state, which the tag
    pull-back merges); True when it was the run's last batch (sync.finalize is enqueued)."""
    by_email = {normalise_email(r.email): r for r in results}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "synced_unspecified": 0, "rejected": 0}
    counts["opted_out"] = 0
    tag_adds: list[dict[str, Any]] = []
    label = PROVIDER_LABELS.get(connection.provider, connection.provider)
    ledger = LedgerWriter.for_run(connection, run_id)
    async with resources.transaction() as session:
        repo = SyncRepository.from_session(session)
        chunk_ids = await repo.claim_pending_chunks(run_id, batch_no)
        if not chunk_ids:
            return False
        contacts = ContactRepository.from_session(session)
        rows = await contacts.ledger_rows(connection.id, (item["email"] for item in payload))
        for item in payload:
            if item["email"] in withdrawn:
                counts["opted_out"] += 1
                ledger.withdrawn(item["address_id"], item["email"], label)
                continue
            result = by_email.get(item["email"]) or UpsertResult.refused(
                item["email"], RejectReason.no_result, None
            )
            row = rows.get(item["email"])
            if result.outcome == UpsertOutcome.rejected:
                counts["rejected"] += 1
                ledger.rejected(
                    row,
                    address_id=item["address_id"],
                    email=item["email"],
                    code=result.code,
                    detail=result.detail,
                    provider=label,
                    rejected_hash=rejection_hash(item["hash"], item.get("tags") or []),
                )
                continue
            provider_says = {
                UpsertOutcome.created: "created",
                UpsertOutcome.updated: "updated",
                UpsertOutcome.unchanged: "unchanged",
            }.get(result.outcome, "synced_unspecified")
            # Decided from the list read at the run's start: exact when the batch was resent.
            key = counted_as(provider_says, item.get("listed"))
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
            ledger.synced(
                row,
                address_id=item["address_id"],
                email=item["email"],
                fingerprint=item["hash"],
                tags=item.get("tags") or [],
                provider_id=result.provider_id,
                resubscribe=bool(item.get("resubscribe")),
                updated=result.outcome != UpsertOutcome.unchanged,
            )
        ledger.member_tags(member_tags or {})
        await ledger.save(session)
        await repo.add_tag_adds(tag_adds)
        await repo.finish_chunks(chunk_ids)
        progress = await repo.increment(run_id, batches_done=1, **counts)
        provider = connection.provider
        for outcome, n in counts.items():
            if n:
                CONTACTS_SYNCED.labels(provider, outcome).inc(n)
        if progress.reading_done and progress.batches_done >= progress.batches_total:
            enqueue_finalize(run_id)
            return True
    return False
