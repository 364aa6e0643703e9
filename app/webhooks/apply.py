"""Apply stored provider events to onOffice, in the order they arrived, one connection at a time.

Every event ends `applied`, `ignored` (with the reason in `last_error`) or, after
INBOUND_EVENT_MAX_ATTEMPTS failed tries, `failed`; until then it stays `pending` and is retried
(backoff, then the periodic sweep). An event waiting for a fresh onOffice login never fails.

Echoes are suppressed: a subscribe for a contact the connector itself keeps subscribed (for
example Brevo's listAddition after our import) or an unsubscribe for one it already knows as
unsubscribed changes nothing and writes no activity.

onOffice writes are made step by step and each finished step is stored on the event, so a retry
never repeats an activity that was already written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from arq.worker import Retry
from sqlalchemy import select, update

from app.connections.factory import onoffice_for_tenant, provider_for_connection
from app.db.base import utcnow
from app.db.models import Connection, Contact, InboundEvent, InboundEventStatus, Tenant
from app.i18n import has_key, t
from app.metrics import WEBHOOK_EVENTS, WEBHOOK_LAG
from app.resources import Resources
from app.syncs.contacts import normalise_email
from app.worker.locks import exclusive
from app.worker.queue import compute_backoff, enqueue_job
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    ActivityCreate,
    Address,
    AddressCreate,
    AddressUpdate,
    NewsletterStatus,
    OnOfficeClaimError,
    OnOfficeError,
    OnOfficeTransientError,
)
from providers.base import (
    ProviderError,
    ProviderEvent,
    ProviderEventType,
    ProviderTransientError,
)

log = logging.getLogger(__name__)

EVENTS_PER_JOB = 200
ACTIVITY_CHUNK = 500  # onOffice creates one activity per address id of a request
ROUNDS_PER_JOB = 5
ACTIVITY_KIND = "Newsletter"
PROVIDER_LABELS = {"mailchimp": "Mailchimp", "brevo": "Brevo"}

# Preferred onOffice action types per event (the first one the customer has is used).
ACTIVITY_TYPES: dict[ProviderEventType, tuple[str, ...]] = {
    ProviderEventType.subscribe: ("bestellt",),
    ProviderEventType.unsubscribe: ("nicht bestellt", "abbestellt"),
    ProviderEventType.deleted: (),
    ProviderEventType.cleaned: (),
    ProviderEventType.delivered: ("versendet", "zugestellt"),
    ProviderEventType.opened: ("geöffnet",),
    ProviderEventType.clicked: ("geklickt",),
    ProviderEventType.hard_bounce: (),
}
OPTIONAL_ACTIVITIES = {
    ProviderEventType.delivered: "delivered",
    ProviderEventType.opened: "opened",
    ProviderEventType.clicked: "clicked",
    ProviderEventType.hard_bounce: "hard_bounce",
}


def apply_job_id(connection_id: int, event_id: int | None = None) -> str:
    base = f"webhooks.apply:{connection_id}"
    return base if event_id is None else f"{base}:{event_id}"


class Waiting(Exception):
    """onOffice needs a user to open the connector (claim outdated): retry later, never fail."""


def _note(provider: str, event: ProviderEvent, lang: str = "de") -> str:
    """The activity note, in the customer's UI language (catalogue keys `activity.*`)."""
    label = PROVIDER_LABELS.get(provider, provider)
    key = f"activity.{event.type.value}"
    parts = [f"{label}: {t(lang, key) if has_key(key) else event.type.value}"]
    if event.campaign:
        parts.append(t(lang, "activity.campaign", campaign=event.campaign))
    if event.url:
        parts.append(event.url)
    if event.reason:
        parts.append(t(lang, "activity.reason", reason=event.reason))
    return " – ".join(parts)


class EventApplier:
    """Applies one connection's events; caches onOffice lookups for the job's lifetime."""

    def __init__(self, resources: Resources, connection: Connection, tenant: Tenant) -> None:
        self.resources = resources
        self.connection = connection
        self.language = tenant.language or "de"
        self.onoffice: OnOfficeClient = onoffice_for_tenant(resources, tenant)
        self._kinds: dict[str, set[str]] | None = None

    async def apply(self, row: InboundEvent) -> tuple[str, str | None]:
        """Returns the final status and a note (the reason for `ignored`)."""
        event = ProviderEvent.model_validate(
            {k: v for k, v in row.payload.items() if not k.startswith("_")}
        )
        steps: list[str] = list(row.payload.get("_steps") or [])
        email = normalise_email(event.email)
        contact = await self._contact(email)
        kind = event.type
        if event.raw_type == "campaign" and event.campaign:
            return await self._campaign_sent(row, event)
        if kind in (ProviderEventType.ignored, ProviderEventType.profile):
            return InboundEventStatus.ignored, f"{event.raw_type}: nothing to apply"
        if kind == ProviderEventType.subscribe:
            if contact is not None and contact.subscribed:
                return InboundEventStatus.ignored, "already subscribed (echo of the connector)"
            return await self._subscribe(row, event, email, steps)
        if kind == ProviderEventType.unsubscribe:
            if contact is not None and contact.subscribed is False:
                return InboundEventStatus.ignored, "already unsubscribed (echo of the connector)"
            changed = await self._set_status(row, event, email, NewsletterStatus.no, steps)
            await self._set_contact(email, subscribed=False)
            if not changed:
                return InboundEventStatus.ignored, "not subscribed in onOffice (echo)"
            return InboundEventStatus.applied, None
        if kind == ProviderEventType.deleted:
            changed = await self._set_status(
                row, event, email, NewsletterStatus.not_specified, steps
            )
            await self._set_contact(email, subscribed=None, forget=True)
            if not changed:
                return InboundEventStatus.ignored, "no onOffice address to change"
            return InboundEventStatus.applied, None
        if kind == ProviderEventType.email_changed:
            return await self._change_email(event, email, contact)
        if kind == ProviderEventType.cleaned:
            await self._activity(row, event, await self._address_ids(email, contact), steps)
            return InboundEventStatus.applied, None
        option = OPTIONAL_ACTIVITIES.get(kind)
        if option is None or not (self.connection.activities or {}).get(option):
            return InboundEventStatus.ignored, f"activities for {kind.value} are switched off"
        await self._activity(row, event, await self._address_ids(email, contact), steps)
        return InboundEventStatus.applied, None

    # -- steps -------------------------------------------------------------------------------

    async def _campaign_sent(
        self, row: InboundEvent, event: ProviderEvent
    ) -> tuple[str, str | None]:
        """Mailchimp reports a sent campaign once: its recipients get a "delivered" activity
        (when switched on), 500 addresses per onOffice request, resumable by offset."""
        if (event.reason or "").lower() != "sent":
            return InboundEventStatus.ignored, f"campaign {event.reason or 'event'}"
        if not (self.connection.activities or {}).get("delivered"):
            return InboundEventStatus.ignored, "activities for delivered are switched off"
        assert event.campaign is not None
        provider = provider_for_connection(self.resources, self.connection)
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
                await self._deliver(row, delivered, batch, position)
                batch = []
        if batch:
            await self._deliver(row, delivered, batch, position)
        return InboundEventStatus.applied, None

    async def _deliver(
        self, row: InboundEvent, event: ProviderEvent, emails: Sequence[str], position: int
    ) -> None:
        async with self.resources.sessionmaker() as session:
            address_ids = list(
                (
                    await session.execute(
                        select(Contact.address_id).where(
                            Contact.connection_id == self.connection.id,
                            Contact.email.in_(list(emails)),
                        )
                    )
                ).scalars()
            )
        if address_ids:
            kind, type_ = await self._activity_kind(ProviderEventType.delivered)
            await self.onoffice.create_activities(
                [
                    ActivityCreate(
                        address_ids=sorted(set(address_ids)),
                        kind=kind,
                        type=type_,
                        note=_note(self.connection.provider, event, self.language),
                        at=event.occurred_at,
                    )
                ]
            )
        steps = list(row.payload.get("_steps") or [])
        await self._step(row, steps, f"delivered:{position}", offset=position)

    async def _subscribe(
        self, row: InboundEvent, event: ProviderEvent, email: str, steps: list[str]
    ) -> tuple[str, str | None]:
        addresses = await self._find(email)
        if not addresses and "create" not in steps:
            # A new sign-up at the provider becomes a new onOffice address.
            address_id = await self.onoffice.create_address(
                AddressCreate(
                    email=email,
                    first_name=event.first_name or "",
                    last_name=event.last_name or "",
                    newsletter=NewsletterStatus.yes,
                    origin="Newsletter",
                )
            )
            await self._step(row, steps, "create", address_id=address_id)
            addresses = await self.onoffice.get_addresses([address_id])
        elif not addresses:
            addresses = await self.onoffice.get_addresses([int(row.payload["_address_id"])])
        elif "status" not in steps and all(a.newsletter == NewsletterStatus.yes for a in addresses):
            await self._set_contact(email, subscribed=True)
            return InboundEventStatus.ignored, "already subscribed in onOffice (echo)"
        await self._write_status(row, addresses, NewsletterStatus.yes, steps)
        await self._activity(row, event, [a.id for a in addresses], steps)
        await self._set_contact(email, subscribed=True)
        return InboundEventStatus.applied, None

    async def _set_status(
        self,
        row: InboundEvent,
        event: ProviderEvent,
        email: str,
        status: NewsletterStatus,
        steps: list[str],
    ) -> bool:
        """Set the status on every address with this email; False when none had to change
        (then it is an echo and no activity is written)."""
        addresses = await self._find(email)
        if "status" not in steps and all(a.newsletter == status for a in addresses):
            return False
        await self._write_status(row, addresses, status, steps)
        await self._activity(row, event, [a.id for a in addresses], steps)
        return True

    async def _write_status(
        self,
        row: InboundEvent,
        addresses: Sequence[Address],
        status: NewsletterStatus,
        steps: list[str],
    ) -> None:
        if "status" in steps:
            return
        # Every address with this email: a duplicate left on "Yes" would re-subscribe the
        # person on the next full sync (the lost-unsubscribe problem).
        changes = [
            (a.id, AddressUpdate(newsletter=status)) for a in addresses if a.newsletter != status
        ]
        if changes:
            await self.onoffice.modify_addresses(changes)
        await self._step(row, steps, "status")

    async def _activity(
        self, row: InboundEvent, event: ProviderEvent, address_ids: Sequence[int], steps: list[str]
    ) -> None:
        if "activity" in steps or not address_ids:
            return
        kind, type_ = await self._activity_kind(event.type)
        await self.onoffice.create_activities(
            [
                ActivityCreate(
                    address_ids=list(address_ids),
                    kind=kind,
                    type=type_,
                    note=_note(self.connection.provider, event, self.language),
                    at=event.occurred_at,
                )
            ]
        )
        await self._step(row, steps, "activity")

    async def _change_email(
        self, event: ProviderEvent, email: str, contact: Contact | None
    ) -> tuple[str, str | None]:
        new_email = normalise_email(event.new_email or "")
        if not new_email or new_email == email:
            return InboundEventStatus.ignored, "no new email in the event"
        addresses = await self._find(email)
        for address in addresses:
            await self.onoffice.change_email(address.id, address.email, new_email)
        if contact is not None:
            async with self.resources.transaction() as session:
                taken = await session.scalar(
                    select(Contact.id).where(
                        Contact.connection_id == self.connection.id, Contact.email == new_email
                    )
                )
                if taken is None:
                    await session.execute(
                        update(Contact).where(Contact.id == contact.id).values(email=new_email)
                    )
        return InboundEventStatus.applied, None

    # -- helpers -----------------------------------------------------------------------------

    async def _step(self, row: InboundEvent, steps: list[str], step: str, **extra: Any) -> None:
        steps.append(step)
        payload = dict(row.payload) | {"_steps": steps} | {f"_{k}": v for k, v in extra.items()}
        row.payload = payload
        async with self.resources.transaction() as session:
            await session.execute(
                update(InboundEvent).where(InboundEvent.id == row.id).values(payload=payload)
            )

    async def _contact(self, email: str) -> Contact | None:
        async with self.resources.sessionmaker() as session:
            stmt = select(Contact).where(
                Contact.connection_id == self.connection.id, Contact.email == email
            )
            return (await session.execute(stmt)).scalar_one_or_none()

    async def _set_contact(
        self, email: str, *, subscribed: bool | None, forget: bool = False
    ) -> None:
        async with self.resources.transaction() as session:
            values: dict[str, Any] = {"subscribed": subscribed}
            if forget:
                values["synced_hash"] = None
            await session.execute(
                update(Contact)
                .where(Contact.connection_id == self.connection.id, Contact.email == email)
                .values(**values)
            )

    async def _find(self, email: str) -> list[Address]:
        return await self.onoffice.find_addresses_by_email(email)

    async def _address_ids(self, email: str, contact: Contact | None) -> list[int]:
        if contact is not None:
            return [contact.address_id]
        return [a.id for a in await self._find(email)]

    async def _activity_kind(self, event_type: ProviderEventType) -> tuple[str, str | None]:
        if self._kinds is None:
            kinds = await self.onoffice.get_action_kinds()
            self._kinds = {k.key: set(k.types) for k in kinds}
        kind = ACTIVITY_KIND if ACTIVITY_KIND in self._kinds else next(iter(self._kinds), "")
        types = self._kinds.get(kind, set())
        wanted = next((t for t in ACTIVITY_TYPES.get(event_type, ()) if t in types), None)
        return kind, wanted


async def apply_pending(
    resources: Resources, connection_id: int, *, job_try: int = 1, max_tries: int = 10
) -> None:
    """Apply the connection's pending events in arrival order, until none is left (bounded per
    job: then it hands over to a new job)."""
    async with exclusive(resources, f"webhooks:{connection_id}") as acquired:
        if not acquired:
            # Another job is applying this connection's events; come back when it is done,
            # so an event stored while it ran is never left behind.
            raise Retry(defer=1 + compute_backoff(1))
        for _round in range(ROUNDS_PER_JOB):
            more = await _apply_round(resources, connection_id, job_try=job_try)
            if not more:
                return
    async with resources.transaction():
        enqueue_job(
            "webhooks.apply",
            _job_id=f"{apply_job_id(connection_id)}:next:{job_try}:{time.time_ns()}",
            connection_id=connection_id,
        )


async def _apply_round(resources: Resources, connection_id: int, *, job_try: int) -> bool:
    """One bounded round; True when pending events remain."""
    settings = resources.settings
    async with resources.sessionmaker() as session:
        connection = await session.get(Connection, connection_id)
        tenant = await session.get(Tenant, connection.tenant_id) if connection else None
        rows = (
            (
                await session.execute(
                    select(InboundEvent)
                    .where(
                        InboundEvent.connection_id == connection_id,
                        InboundEvent.status == InboundEventStatus.pending,
                    )
                    .order_by(InboundEvent.id)
                    .limit(EVENTS_PER_JOB)
                )
            )
            .scalars()
            .all()
        )
    if connection is None or tenant is None or not rows:
        return False
    applier = EventApplier(resources, connection, tenant)
    for row in rows:
        try:
            status, note = await applier.apply(row)
        except OnOfficeClaimError as exc:
            await _record_failure(resources, row, exc, settings.INBOUND_EVENT_MAX_ATTEMPTS, True)
            return False  # every later event needs the same fresh login; the sweep retries
        except (OnOfficeError, ProviderError) as exc:
            transient = isinstance(exc, OnOfficeTransientError | ProviderTransientError)
            failed = await _record_failure(
                resources, row, exc, settings.INBOUND_EVENT_MAX_ATTEMPTS, transient
            )
            if transient and not failed:
                # Keep the order: later events wait until this one is through.
                raise Retry(defer=compute_backoff(job_try, cap=120)) from exc
            continue
        await _finish(resources, row, status, note)
    return True


async def _finish(resources: Resources, row: InboundEvent, status: str, note: str | None) -> None:
    async with resources.transaction() as session:
        await session.execute(
            update(InboundEvent)
            .where(InboundEvent.id == row.id)
            .values(
                status=status,
                applied_at=utcnow(),
                attempts=InboundEvent.attempts + 1,
                last_error=note,
            )
        )
    WEBHOOK_EVENTS.labels(row.source, status).inc()
    received = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=UTC)
    WEBHOOK_LAG.labels(row.source).observe(max(0.0, (utcnow() - received).total_seconds()))


async def _record_failure(
    resources: Resources, row: InboundEvent, exc: Exception, max_attempts: int, retryable: bool
) -> bool:
    """Count a failed try; True when the event is given up on (parked as failed)."""
    attempts = row.attempts + 1
    give_up = not retryable or attempts >= max_attempts
    if isinstance(exc, OnOfficeClaimError):
        give_up = False
    async with resources.transaction() as session:
        await session.execute(
            update(InboundEvent)
            .where(InboundEvent.id == row.id)
            .values(
                attempts=attempts,
                last_error=str(exc)[:2000],
                status=InboundEventStatus.failed if give_up else InboundEventStatus.pending,
            )
        )
    row.attempts = attempts
    log.warning(
        "webhook.apply_failed",
        extra={"event_id": row.id, "attempts": attempts, "gave_up": give_up, "error": str(exc)},
    )
    if give_up:
        WEBHOOK_EVENTS.labels(row.source, "failed").inc()
    return give_up


async def sweep(resources: Resources) -> int:
    """Enqueue the apply job of every connection with pending events (lost enqueues, retries)."""
    async with resources.transaction() as session:
        ids = (
            (
                await session.execute(
                    select(InboundEvent.connection_id)
                    .where(
                        InboundEvent.status == InboundEventStatus.pending,
                        InboundEvent.connection_id.is_not(None),
                    )
                    .distinct()
                )
            )
            .scalars()
            .all()
        )
        for connection_id in ids:
            if connection_id is not None:
                enqueue_job(
                    "webhooks.apply",
                    _job_id=apply_job_id(connection_id),
                    connection_id=connection_id,
                )
    return len(ids)
