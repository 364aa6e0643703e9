"""Mailchimp's sent campaign (`campaign` webhook): its recipients get a "delivered" activity
in onOffice (when switched on), 500 addresses per request, resumable by offset, each recipient's
activity recorded in its consent history with the chunk's step. Applied one event at a time by
`EventApplier` (`app.webhooks.apply`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from app.contacts.repository import ContactRepository
from app.db.models import Connection, InboundEvent, InboundEventStatus
from app.db.session import Database
from app.history.events import ACTIVITY, written
from app.history.writer import Entry
from app.webhooks.activities import create_for_known, unknown_note
from app.webhooks.deps import ApplyDeps
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import ActivityCreate
from providers.base import ProviderEvent, ProviderEventType


class EventApplier(Protocol):
    """What a sent campaign needs of `app.webhooks.apply.EventApplier` (a protocol, so that
    this module does not import the applier that imports it)."""

    connection: Connection
    db: Database
    deps: ApplyDeps
    onoffice: OnOfficeClient

    async def activity_item(
        self, row: InboundEvent, event: ProviderEvent, address_ids: Sequence[int]
    ) -> ActivityCreate: ...

    async def _create_once(
        self, row: InboundEvent, steps: list[str], item: ActivityCreate
    ) -> None: ...

    async def _step(
        self,
        row: InboundEvent,
        steps: list[str],
        step: str,
        *,
        history: Iterable[Entry] = (),
        **extra: Any,
    ) -> None: ...


ACTIVITY_CHUNK = 500  # onOffice creates one activity per address id of a request


async def campaign_sent(
    applier: EventApplier, row: InboundEvent, event: ProviderEvent
) -> tuple[str, str | None]:
    """Mailchimp reports a sent campaign once: its recipients get a "delivered" activity
    (when switched on), 500 addresses per onOffice request, resumable by offset."""
    if (event.reason or "").lower() != "sent":
        return InboundEventStatus.ignored, f"campaign {event.reason or 'event'}"
    if not (applier.connection.activities or {}).get("delivered"):
        return InboundEventStatus.ignored, "activities for delivered are switched off"
    assert event.campaign is not None
    provider = applier.deps.provider(applier.connection)
    done = int(row.payload.get("_offset") or 0)
    delivered = event.model_copy(update={"type": ProviderEventType.delivered})
    position = 0
    batch: list[str] = []
    async for email in provider.iter_campaign_recipients(event.campaign):
        position += 1
        if position <= done:
            continue
        batch.append(email)
        if len(batch) >= ACTIVITY_CHUNK:
            await _deliver(applier, row, delivered, batch, position)
            batch = []
    if batch:
        await _deliver(applier, row, delivered, batch, position)
    unknown = row.payload.get("_unknown") or []
    return InboundEventStatus.applied, unknown_note(unknown) if unknown else None


async def _deliver(
    applier: EventApplier,
    row: InboundEvent,
    event: ProviderEvent,
    emails: Sequence[str],
    position: int,
) -> None:
    async with applier.db.sessionmaker() as session:
        contacts = await ContactRepository.from_session(session).by_emails(
            applier.connection.id, emails
        )
    address_ids = sorted({c.address_id for c in contacts.values()})
    steps = list(row.payload.get("_steps") or [])
    unknown = list(row.payload.get("_unknown") or [])
    history: list[Entry] = []
    if address_ids:
        item = await applier.activity_item(row, event, address_ids)
        # An address onOffice no longer knows fails alone, not its chunk.
        missing = await create_for_known(
            applier.onoffice, item, lambda part: applier._create_once(row, steps, part)
        )
        unknown += missing
        for email, contact in sorted(contacts.items()):
            if contact.address_id not in missing:
                history += written(
                    row, [(contact.address_id, ACTIVITY)], email=email, note="delivered"
                )
    await applier._step(
        row, steps, f"delivered:{position}", history=history, offset=position, unknown=unknown
    )
