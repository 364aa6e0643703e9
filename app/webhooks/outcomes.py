"""What becomes of a stored event: finished (with its metrics), a failed try counted (parked as
failed after INBOUND_EVENT_MAX_ATTEMPTS), a batch's written plans settled, or held as part of a
removal burst (Mailchimp's "Archive All") for a person to apply or dismiss (`decide_held`)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.connections.factory import BURST_SOURCES, webhooks_per_list
from app.contacts.confirm import confirmation_list
from app.contacts.repository import ContactRepository, ProviderRecord
from app.contacts.rules import Signal, event_state, is_removal_burst
from app.contacts.values import normalise_email
from app.db.base import aware, utcnow
from app.db.models import Connection, InboundEvent, InboundEventStatus
from app.db.session import Database
from app.history.events import activity_written, event_entries, written
from app.history.writer import Entry
from app.history.writer import record as record_history
from app.inbox.repository import RECONCILE_REMOVAL, InboundEventRepository
from app.lifecycle.repository import LifecycleRepository
from app.metrics import WEBHOOK_EVENTS, WEBHOOK_LAG
from app.webhooks.jobs import enqueue_release
from app.webhooks.plan import Plan, event_of, shown_after
from app.webhooks.repository import WebhookEventRepository
from onoffice_client.models import OnOfficeAccessLost, OnOfficeClaimError, OnOfficeError

log = logging.getLogger(__name__)

# onOffice errors that no retry of the event mends, only onOffice itself: a login to refresh
# the claim, or the access onOffice refuses (app/connections/access.py). The events wait
# (pending, never given up) and the drain stops until then.
WAITS_FOR_ONOFFICE = (OnOfficeClaimError, OnOfficeAccessLost)


def is_burst_candidate(row: InboundEvent) -> bool:
    if row.payload.get("type") != "deleted":
        return False
    if row.dedupe_key.startswith(RECONCILE_REMOVAL):
        return True  # a removal the reconciliation found, at any provider
    return row.source in BURST_SOURCES and not row.dedupe_key.startswith("reconcile:")


async def hold_burst(db: Database, settings: Settings, connection_id: int) -> bool:
    """Mailchimp sends one event per contact for "Archive All": a burst of removals within
    ARCHIVE_BURST_WINDOW_S is held (status `held`) for a user to apply or dismiss."""
    async with db.transaction() as session:
        repo = WebhookEventRepository.from_session(session)
        removals = await repo.pending_removals(connection_id, InboundEventStatus.pending)
        fresh = [r for r in removals if not r.payload.get("_released")]
        if not fresh:
            return False
        # While a burst is held, later removals join it ("Archive All" of a large audience
        # arrives over minutes).
        if await repo.count_held(connection_id) == 0 and not is_removal_burst(
            [aware(r.received_at) or utcnow() for r in fresh],
            settings.ARCHIVE_BURST_THRESHOLD,
            settings.ARCHIVE_BURST_WINDOW_S,
        ):
            return False
        await repo.set_status(
            [r.id for r in fresh],
            InboundEventStatus.held,
            last_error="held: many archives/deletes at once (Archive All?); apply or dismiss",
        )
    log.warning("webhook.burst_held", extra={"connection_id": connection_id, "events": len(fresh)})
    return True


async def finish_event(db: Database, row: InboundEvent, status: str, note: str | None) -> None:
    """An event applied on its own (`EventApplier.apply`): its outcome, and its signal in the
    consent history (the onOffice writes were recorded with each finished step)."""
    async with db.transaction() as session:
        await InboundEventRepository.from_session(session).update_events(
            [row.id], tried=True, status=status, applied_at=utcnow(), last_error=note
        )
        if row.connection_id is not None:
            outcome = None if status == InboundEventStatus.applied else status
            await record_history(session, row.connection_id, event_entries(row, note=outcome))
    WEBHOOK_EVENTS.labels(row.source, status).inc()
    received = aware(row.received_at)
    WEBHOOK_LAG.labels(row.source).observe(max(0.0, (utcnow() - received).total_seconds()))


async def record_failure(
    db: Database, row: InboundEvent, exc: Exception, max_attempts: int, retryable: bool
) -> bool:
    """Count a failed try; True when the event is given up on (parked as failed)."""
    attempts = row.attempts + 1
    give_up = not retryable or attempts >= max_attempts
    if isinstance(exc, WAITS_FOR_ONOFFICE):
        give_up = False
    async with db.transaction() as session:
        await InboundEventRepository.from_session(session).update_events(
            [row.id],
            attempts=attempts,
            last_error=str(exc)[:2000],
            status=InboundEventStatus.failed if give_up else InboundEventStatus.pending,
        )
    row.attempts = attempts
    log.warning(
        "webhook.apply_failed",
        extra={"event_id": row.id, "attempts": attempts, "gave_up": give_up, "error": str(exc)},
    )
    if give_up:
        WEBHOOK_EVENTS.labels(row.source, "failed").inc()
    return give_up


async def record_failures(
    db: Database, rows: Sequence[InboundEvent], exc: Exception, max_attempts: int
) -> None:
    """One more failed try for each of `rows` (one transaction); parked as failed after
    INBOUND_EVENT_MAX_ATTEMPTS, except while waiting for a fresh onOffice login."""
    claim = isinstance(exc, WAITS_FOR_ONOFFICE)
    give_up = [r.id for r in rows if r.attempts + 1 >= max_attempts and not claim]
    keep = [r.id for r in rows if r.id not in set(give_up)]
    note = str(exc)[:2000]
    async with db.transaction() as session:
        events = InboundEventRepository.from_session(session)
        await events.update_events(
            keep, tried=True, last_error=note, status=InboundEventStatus.pending
        )
        await events.update_events(
            give_up, tried=True, last_error=note, status=InboundEventStatus.failed
        )
    for row in rows:
        row.attempts += 1
    if give_up:
        WEBHOOK_EVENTS.labels(rows[0].source, "failed").inc(len(give_up))
    log.warning(
        "webhook.apply_failed",
        extra={"events": len(rows), "gave_up": len(give_up), "error": note},
    )


async def settle(
    db: Database,
    connection_id: int,
    succeeded: Sequence[Plan],
    failed: Sequence[Plan],
    done_steps: dict[int, set[str]],
    errors: dict[int, OnOfficeError],
    max_attempts: int,
) -> None:
    """One transaction for a batch's written plans: the ledger learns what succeeded, every
    event gets its outcome, a failed one keeps its finished steps and counts one more try."""
    now = utcnow()
    async with db.transaction() as session:
        contacts = ContactRepository.from_session(session)
        events = InboundEventRepository.from_session(session)
        records = []
        for plan in succeeded:
            if plan.record is not None:
                provider, written, contact, address_id = plan.record
                current = None if contact is None else contact.onoffice_status
                shown = None  # a bounce: onOffice kept its value
                if written is not None:
                    shown = Signal(shown_after(written, current), provider.at)
                records.append(ProviderRecord(plan.email, provider, address_id, shown))
        await contacts.record_providers(connection_id, records)
        await record_history(session, connection_id, _history(succeeded))
        by_outcome: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for plan in succeeded:
            by_outcome[(plan.status, plan.note)].append(plan.row.id)
        for (status, note), ids in by_outcome.items():
            await events.update_events(
                ids, tried=True, status=status, applied_at=now, last_error=note
            )
        # A failed plan's finished steps are not repeated by its retry: recorded now.
        await record_history(
            session,
            connection_id,
            [e for p in failed for e in _written(p, done_steps[id(p)] - set(p.steps))],
        )
        for plan in failed:
            steps = list(dict.fromkeys([*plan.steps, *sorted(done_steps[id(plan)])]))
            if steps != plan.steps:
                plan.row.payload = dict(plan.row.payload) | {"_steps": steps}
                await events.set_payload(plan.row.id, plan.row.payload)
            error = errors.get(id(plan))
            attempts = plan.row.attempts + 1
            claim = isinstance(error, WAITS_FOR_ONOFFICE)
            give_up = attempts >= max_attempts and not claim
            await events.update_events(
                [plan.row.id],
                attempts=attempts,
                last_error=str(error)[:2000] if error else "not applied",
                status=InboundEventStatus.failed if give_up else InboundEventStatus.pending,
            )
            plan.row.attempts = attempts
            if give_up:
                WEBHOOK_EVENTS.labels(plan.row.source, "failed").inc()
    for plan in succeeded:
        WEBHOOK_EVENTS.labels(plan.row.source, plan.status).inc()
        received = aware(plan.row.received_at) or now
        WEBHOOK_LAG.labels(plan.row.source).observe(max(0.0, (now - received).total_seconds()))
    if failed:
        log.warning(
            "webhook.apply_failed",
            extra={
                "events": [p.row.id for p in failed],
                "error": str(next(iter(errors.values()), "")),
            },
        )


def _history(plans: Sequence[Plan]) -> list[Entry]:
    """What the settled plans tell the consent history: the confirmed provider state (or the
    outcome of an event that changed nothing) and each onOffice address written."""
    entries: list[Entry] = []
    for plan in plans:
        note = None if plan.status == InboundEventStatus.applied else plan.status
        if plan.record is not None:
            provider = plan.record[0]
            entries += event_entries(plan.row, state=provider.status, at=provider.at, note=note)
        else:
            entries += event_entries(plan.row, note=note)
        entries += _written(plan, {"status", "activity"})
    return entries


def _written(plan: Plan, steps: set[str]) -> list[Entry]:
    """The onOffice writes of the plan's `steps` (those that were made)."""
    entries: list[Entry] = []
    if "status" in steps:
        entries += written(plan.row, [(a, status.name) for a, status in plan.modifies])
    if "activity" in steps and plan.activity is not None:
        entries += activity_written(plan.row, plan.activity.address_ids)
    return entries


async def decide_held(
    session: AsyncSession,
    connection: Connection,
    *,
    apply: bool,
    emails: Sequence[str] | None = None,
) -> list[InboundEvent]:
    """A user's decision on the held burst, or on the members `emails` of it: apply (each
    removal is confirmed at the provider before onOffice changes) or dismiss (onOffice keeps
    its values). The events it covered."""
    repo = WebhookEventRepository.from_session(session)
    held = list(await repo.pending_removals(connection.id, InboundEventStatus.held))
    if emails is not None:
        chosen = set(emails)
        held = [e for e in held if normalise_email(str(e.payload.get("email", ""))) in chosen]
    if apply:
        for event in held:
            await repo.release(event)
        if held:
            enqueue_release(connection.id)
    else:
        now = utcnow()
        await repo.set_status(
            [e.id for e in held],
            InboundEventStatus.ignored,
            last_error="dismissed by a user (held burst of archives/deletes)",
            applied_at=now,
        )
        # Remembered per member: no later event, sync or reconciliation writes it back. A
        # removal of a list the connection has left is that list's (its parked ledger), not
        # the current list's: "archived" there would be wrong here.
        here = connection.list_id or ""
        per_list = webhooks_per_list(connection.provider)
        removals: dict[str, Signal] = {}
        elsewhere: dict[str, dict[str, tuple[str | None, datetime]]] = defaultdict(dict)
        for row in held:
            removal = event_of(row)
            at = removal.occurred_at or aware(row.received_at)
            email, state = normalise_email(removal.email), event_state(removal.type.value)
            at_list = confirmation_list(removal, here, webhooks_per_list=per_list)
            if at_list == here:
                removals[email] = Signal(state, at)
            else:
                elsewhere[at_list][email] = (state, at)
        await ContactRepository.from_session(session).dismiss_removals(connection.id, removals, now)
        lifecycle = LifecycleRepository.from_session(session)
        for list_id, signals in sorted(elsewhere.items()):
            await lifecycle.dismiss_parked(connection, list_id, signals, now)
    return held
