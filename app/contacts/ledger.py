"""Writes that follow from a consent decision and touch more than the ledger row."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_label
from app.contacts.rules import BOUNCE_STATES, REMOVED_STATES, Signal
from app.contacts.values import normalise_email
from app.db.base import utcnow
from app.inbox.events import store
from app.inbox.jobs import ONOFFICE_SOURCE
from app.inbox.repository import DEDUPE_KEY_MAX, RECONCILE_REMOVAL, InboundEventRepository
from app.incremental.jobs import enqueue_drain
from app.lifecycle.repository import LifecycleRepository
from app.webhooks.jobs import enqueue_apply
from providers.base import ProviderContact, ProviderEvent, ProviderEventType


def write_back_type(provider_state: str) -> ProviderEventType:
    if provider_state in REMOVED_STATES:
        return ProviderEventType.deleted
    if provider_state in BOUNCE_STATES:
        return ProviderEventType.cleaned
    return ProviderEventType.unsubscribe


async def write_back_opt_out(
    session: AsyncSession, provider: str, connection_id: int, email: str, signal: Signal
) -> int | None:
    """A provider opt-out the full sync found (its webhook was lost or never sent) goes to
    onOffice the way a webhook would: stored as an event and applied by the webhook applier
    (No or "not specified", with the activity). Deduplicated per state and time; a write-back
    of the same state and time that was parked as failed is tried again (a later run or
    reconciliation never finds its key blocked)."""
    assert signal.status is not None
    kind = write_back_type(signal.status)
    at = signal.at.isoformat() if signal.at else "unknown"
    event = ProviderEvent(
        type=kind,
        email=email,
        occurred_at=signal.at,
        reason=f"{signal.status} at {provider_label(provider)}",
        source="reconcile",
        raw_type="reconcile",
        dedupe_key=f"reconcile:{connection_id}:{email}:{signal.status}:{at}",
    )
    return await _store(session, provider, connection_id, event, revive=True)


async def store_reconciled(
    session: AsyncSession,
    provider: str,
    connection_id: int,
    list_id: str,
    kind: ProviderEventType,
    member: ProviderContact,
) -> int | None:
    """A change the periodic reconciliation found at the provider (`app.contacts.reconcile`)
    is stored as the event a webhook would have brought and applied by the webhook applier:
    opt-outs and bounces exactly like a full sync's write-back (same key: found once by
    either), removals as burst candidates (Archive-All rule), sign-ups like a subscribe
    webhook (a new onOffice address). Deduplicated per email, state and time."""
    email = normalise_email(member.email)
    status = str(member.status)
    if kind in (ProviderEventType.unsubscribe, ProviderEventType.cleaned):
        signal = Signal(status, member.last_changed)
        return await write_back_opt_out(session, provider, connection_id, email, signal)
    at = member.last_changed.isoformat() if member.last_changed else "unknown"
    prefix = RECONCILE_REMOVAL if kind == ProviderEventType.deleted else "reconcile-subscribe:"
    event = ProviderEvent(
        type=kind,
        email=email,
        first_name=member.first_name or None,
        last_name=member.last_name or None,
        provider_id=member.provider_id,
        list_id=list_id,
        occurred_at=member.last_changed,
        source="reconcile",
        raw_type="reconcile",
        dedupe_key=f"{prefix}{connection_id}:{email}:{status}:{at}",
    )
    return await _store(session, provider, connection_id, event)


async def _store(
    session: AsyncSession,
    provider: str,
    connection_id: int,
    event: ProviderEvent,
    *,
    revive: bool = False,
) -> int | None:
    """Store a write-back event for the webhook applier and start it after the commit;
    `revive`: an earlier event with the key that was parked as failed is tried again."""
    payload: dict[str, Any] = event.model_dump(mode="json")
    event_id = await InboundEventRepository.from_session(session).create_on_conflict_do_nothing(
        source=provider,
        dedupe_key=event.dedupe_key,
        payload=payload,
        received_at=utcnow(),
        connection_id=connection_id,
    )
    if event_id is None and revive:
        event_id = await LifecycleRepository.from_session(session).revive_failed(
            provider, event.dedupe_key[:DEDUPE_KEY_MAX]
        )
    if event_id is not None:
        enqueue_apply(connection_id, event_id)
    return event_id


PERSON_OPT_OUT = "person"  # raw_type of an onOffice opt-out carried to the other addresses


async def write_back_person_opt_out(
    session: AsyncSession,
    provider: str,
    connection_id: int,
    email: str,
    carrier: int,
    signal: Signal,
) -> int | None:
    """A person opted out in onOffice on address `carrier` while other addresses with the email
    still say Yes: they get No the way a provider opt-out reaches them (stored as an event and
    applied by the webhook applier: only addresses still on Yes are changed, with an activity
    naming `carrier`). Deduplicated per carrier and time."""
    at = signal.at.isoformat() if signal.at else "unknown"
    event = ProviderEvent(
        type=ProviderEventType.unsubscribe,
        email=email,
        occurred_at=signal.at,
        reason=signal.status,
        source="onoffice",
        raw_type=PERSON_OPT_OUT,
        address_id=carrier,
        dedupe_key=f"person:{connection_id}:{email}:{carrier}:{signal.status}:{at}",
    )
    return await _store(session, provider, connection_id, event)


async def push_person_later(
    session: AsyncSession, tenant_id: int, connection_id: int, address_id: int, key: str
) -> int | None:
    """The incremental push executes a person's plan that needs the provider now (e.g. an
    unsubscribe the full sync found): stored as an "address saved" event for `address_id` and
    drained after the commit. Deduplicated by `key`."""
    stored = await store(
        session,
        source=ONOFFICE_SOURCE,
        dedupe_key=f"person:{connection_id}:{address_id}:{key}",
        payload={"tenant_id": tenant_id, "address_id": address_id},
        connection_id=connection_id,
    )
    if not stored.new:
        return None
    enqueue_drain(connection_id, f"person:{stored.id}")
    return stored.id
