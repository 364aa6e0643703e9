"""Apply stored provider events to onOffice: the rules per event (`EventApplier`), the burst
hold and the outcome bookkeeping. The drain (`app.webhooks.drain`) runs them in batches
(`app.webhooks.batch`), in the order the events arrived, one connection at a time.

Every event ends `applied`, `ignored` (with the reason in `last_error`) or, after
INBOUND_EVENT_MAX_ATTEMPTS failed tries, `failed`; until then it stays `pending` and is retried
(backoff, then the periodic sweep). An event waiting for a fresh onOffice login never fails.

Echoes are suppressed: a subscribe for a contact the connector itself keeps subscribed (for
example Brevo's listAddition after our import) or an unsubscribe for one it already knows as
unsubscribed changes nothing and writes no activity.

onOffice writes are made step by step and each finished step is stored on the event, so a retry
never repeats an activity that was already written; every onOffice address a step wrote is
recorded in the consent history in that step's transaction (`app.history.events.written`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_label
from app.contacts.confirm import Confirmation, ledger_learns, may_create
from app.contacts.repository import ContactRepository, onoffice_signal, provider_signal
from app.contacts.rules import (
    BOUNCE_STATES,
    SUBSCRIBED,
    EventVerdict,
    Signal,
    aware,
    event_state,
    is_opt_out,
    judge_event,
    may_overwrite,
)
from app.contacts.values import normalise_email
from app.db.models import Connection, Contact, InboundEvent, InboundEventStatus, Tenant
from app.history.events import CREATED, activity_written, written
from app.history.writer import Entry
from app.history.writer import record as record_history
from app.inbox.repository import InboundEventRepository
from app.webhooks.activities import (
    OPTIONAL_ACTIVITIES,
    activity_kind,
    activity_note,
    activity_time,
    create_once,
)
from app.webhooks.campaign import campaign_sent
from app.webhooks.confirming import StateCache
from app.webhooks.deps import ApplyDeps
from app.webhooks.email_change import change_email
from app.webhooks.nonconsent import (
    ALREADY_RECORDED,
    DISMISSED_NOTE,
    bounce_activity_ids,
    bounce_repeat,
)
from app.webhooks.plan import (
    ACTIVITY_UNSURE,
    CREATE_UNSURE,
    NO_ADDRESS,
    event_of,
    is_echo,
    shown_after,
)
from app.webhooks.settling import Settling
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    ActivityCreate,
    Address,
    AddressCreate,
    AddressUpdate,
    NewsletterStatus,
    OnOfficeTransientError,
)
from providers.base import (
    ProviderEvent,
    ProviderEventType,
)

log = logging.getLogger(__name__)


class EventApplier:
    """Applies one connection's events; caches onOffice lookups for the job's lifetime."""

    def __init__(self, deps: ApplyDeps, connection: Connection, tenant: Tenant) -> None:
        self.deps = deps
        self.db = deps.db
        self.connection = connection
        self.language = tenant.language or "de"
        self.onoffice: OnOfficeClient = deps.onoffice
        self.tenant_id = tenant.id
        # The current batch's confirmations (app.webhooks.confirming), by event id, and the
        # provider states this drain job read.
        self.confirmed: dict[int, Confirmation] = {}
        self.states = StateCache()
        # The last batch's settling transaction, while the next batch works (app.webhooks.settling).
        self.settling = Settling()

    async def apply(self, row: InboundEvent) -> tuple[str, str | None]:
        """Returns the final status and a note (the reason for `ignored` or `unconfirmed`)."""
        confirmation = self.confirmed.get(row.id)
        if confirmation is not None and confirmation.event is None:
            return InboundEventStatus.unconfirmed, confirmation.reason
        event = confirmation.event if confirmation is not None else event_of(row)
        assert event is not None
        steps: list[str] = list(row.payload.get("_steps") or [])
        email = normalise_email(event.email)
        contact = await self._contact(email)
        kind = event.type
        if event.raw_type == "campaign" and event.campaign:
            return await campaign_sent(self, row, event)
        if kind in (ProviderEventType.ignored, ProviderEventType.profile):
            return InboundEventStatus.ignored, f"{event.raw_type}: nothing to apply"
        if kind == ProviderEventType.email_changed:
            return await change_email(self, row, event, email, contact)
        state = event_state(kind.value)
        if state is not None:
            verdict = self._verdict(row, event, contact)
            if verdict == EventVerdict.stale:
                return InboundEventStatus.ignored, "older than the consent state already known"
            if verdict == EventVerdict.dismissed:
                return InboundEventStatus.ignored, DISMISSED_NOTE
            if (
                verdict == EventVerdict.confirm
                and confirmation is None
                and not await self._confirmed(email, kind)
            ):
                return InboundEventStatus.ignored, f"{self._label} no longer shows this opt-out"
        at = event.occurred_at or aware(row.received_at)
        if kind == ProviderEventType.subscribe:
            if contact is not None and contact.provider_status == SUBSCRIBED and contact.subscribed:
                return InboundEventStatus.ignored, "already subscribed (echo of the connector)"
            creates = may_create(event, confirmation)
            return await self._subscribe(row, event, email, steps, at, creates)
        if state in BOUNCE_STATES:  # not consent (app.webhooks.nonconsent)
            if bounce_repeat(event, contact, steps):
                return InboundEventStatus.ignored, ALREADY_RECORDED
            addresses = await self._find(email)
            ids = bounce_activity_ids(self.connection, event, contact, addresses)
            await self._activity(row, event, ids, steps)
            first = addresses[0].id if addresses else None
            async with self.db.transaction() as session:
                repo = ContactRepository.from_session(session)
                await repo.record_provider(
                    self.connection.id, email, Signal(state, at), address_id=first
                )
            return InboundEventStatus.applied, None
        if kind == ProviderEventType.unsubscribe:
            changed = await self._set_status(row, event, email, NewsletterStatus.no, steps)
            learnt = ledger_learns(confirmation, Signal(state, at), provider_signal(contact, None))
            await self._record(email, learnt, NewsletterStatus.no, contact)
            if not changed:
                return InboundEventStatus.ignored, "not subscribed in onOffice (echo)"
            return InboundEventStatus.applied, None
        if kind == ProviderEventType.deleted:
            changed = await self._set_status(
                row, event, email, NewsletterStatus.not_specified, steps
            )
            learnt = ledger_learns(confirmation, Signal(state, at), provider_signal(contact, None))
            await self._record(email, learnt, NewsletterStatus.not_specified, contact)
            if not changed:
                return InboundEventStatus.ignored, "nothing to change in onOffice"
            return InboundEventStatus.applied, None
        option = OPTIONAL_ACTIVITIES.get(kind)
        if option is None or not (self.connection.activities or {}).get(option):
            return InboundEventStatus.ignored, f"activities for {kind.value} are switched off"
        await self._activity(row, event, await self._address_ids(email, contact), steps)
        return InboundEventStatus.applied, None

    @property
    def _label(self) -> str:
        return provider_label(self.connection.provider)

    def _verdict(
        self, row: InboundEvent, event: ProviderEvent, contact: Contact | None
    ) -> EventVerdict:
        if (
            event.type == ProviderEventType.unsubscribe
            and event.list_id
            and self.connection.list_id
            and event.list_id != self.connection.list_id
        ):
            # Brevo: an unsubscribe from another list or campaign may still blacklist the
            # person account-wide; the provider's current state decides.
            return EventVerdict.confirm
        if row.payload.get("_released"):
            return EventVerdict.confirm  # held in a burst, released by a user: check first
        return judge_event(
            event.type.value,
            event.occurred_at or aware(row.received_at),
            provider_signal(contact, None),
            onoffice_signal(contact),
            dismissed_at=contact.removal_dismissed_at if contact is not None else None,
        )

    async def _confirmed(self, email: str, kind: ProviderEventType) -> bool:
        """Re-read the contact: is it opted out at the provider right now (for a removal: or
        no longer in the list, Brevo)?"""
        assert self.connection.list_id is not None
        provider = self.deps.provider(self.connection)
        current = await provider.get_contact(self.connection.list_id, email)
        if current is None or is_opt_out(current.status):
            return True
        return kind == ProviderEventType.deleted and current.in_list is False

    async def _record(
        self,
        email: str,
        provider: Signal,
        written: NewsletterStatus,
        contact: Contact | None,
        address_id: int | None = None,
    ) -> None:
        """The ledger learns the provider's new state and what onOffice now shows."""
        status = shown_after(written, onoffice_signal(contact).status)
        at = provider.at
        async with self.db.transaction() as session:
            await ContactRepository.from_session(session).record_provider(
                self.connection.id,
                email,
                provider,
                address_id=address_id,
                onoffice=Signal(status, at),
            )

    # -- steps -------------------------------------------------------------------------------

    async def _subscribe(
        self,
        row: InboundEvent,
        event: ProviderEvent,
        email: str,
        steps: list[str],
        at: Any,
        may_create: bool,
    ) -> tuple[str, str | None]:
        addresses = await self._find(email)
        if not addresses and "create" not in steps and not may_create:
            return InboundEventStatus.ignored, NO_ADDRESS
        if not addresses and "create" not in steps:
            # A new sign-up at the provider becomes a new onOffice address. Brevo's
            # listAddition carries no names: they are read from the contact.
            first, last = event.first_name or "", event.last_name or ""
            if not (first or last) and self.connection.list_id:
                provider = self.deps.provider(self.connection)
                known = await provider.get_contact(self.connection.list_id, email)
                if known is not None:
                    first, last = known.first_name, known.last_name
            try:
                address_id = await self.onoffice.create_address(
                    AddressCreate(
                        email=email,
                        first_name=first,
                        last_name=last,
                        newsletter=NewsletterStatus.yes,
                        origin="Newsletter",
                    )
                )
            except OnOfficeTransientError as exc:
                if exc.maybe_applied and CREATE_UNSURE not in steps:
                    # The next try finds the address by its email, and must not take it for
                    # an echo of the connector (the activity is still to be written).
                    await self._step(row, steps, CREATE_UNSURE)
                raise
            created = written(row, [(address_id, NewsletterStatus.yes.name)], note=CREATED)
            await self._step(row, steps, "create", history=created, address_id=address_id)
            addresses = await self.onoffice.get_addresses([address_id])
        elif not addresses:
            addresses = await self.onoffice.get_addresses([int(row.payload["_address_id"])])
        elif is_echo(steps, addresses, NewsletterStatus.yes):
            await self._record(
                email, Signal(SUBSCRIBED, at), NewsletterStatus.yes, None, addresses[0].id
            )
            return InboundEventStatus.ignored, "already subscribed in onOffice (echo)"
        await self._write_status(row, addresses, NewsletterStatus.yes, steps)
        await self._activity(row, event, [a.id for a in addresses], steps)
        await self._record(
            email, Signal(SUBSCRIBED, at), NewsletterStatus.yes, None, addresses[0].id
        )
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
        if is_echo(steps, addresses, status):
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
            (a.id, AddressUpdate(newsletter=status))
            for a in addresses
            if may_overwrite(a.newsletter, status)
        ]
        if changes:
            await self.onoffice.modify_addresses(changes)
        done = written(row, [(a, status.name) for a, _ in changes])
        await self._step(row, steps, "status", history=done)

    async def _activity(
        self, row: InboundEvent, event: ProviderEvent, address_ids: Sequence[int], steps: list[str]
    ) -> None:
        if "activity" in steps or not address_ids:
            return
        await self._create_once(row, steps, await self.activity_item(row, event, address_ids))
        await self._step(row, steps, "activity", history=activity_written(row, address_ids))

    async def activity_item(
        self, row: InboundEvent, event: ProviderEvent, address_ids: Sequence[int]
    ) -> ActivityCreate:
        """The onOffice activity of `event` on `address_ids` (its kind and type as configured for
        the event's type; its note and time from the event)."""
        kind, type_ = await self._activity_kind(event.type)
        return ActivityCreate(
            address_ids=sorted(set(address_ids)),
            kind=kind,
            type=type_,
            note=activity_note(self.connection.provider, event, self.language),
            at=activity_time(event, row.received_at),
        )

    async def _create_once(self, row: InboundEvent, steps: list[str], item: ActivityCreate) -> None:
        """Create the activity, and only where it is missing after a try whose answer was lost
        (that try stored ACTIVITY_UNSURE, which a success clears)."""
        try:
            await create_once(self.onoffice, [item], unsure=ACTIVITY_UNSURE in steps)
        except OnOfficeTransientError as exc:
            if exc.maybe_applied and ACTIVITY_UNSURE not in steps:
                await self._step(row, steps, ACTIVITY_UNSURE)
            raise
        if ACTIVITY_UNSURE in steps:
            steps.remove(ACTIVITY_UNSURE)

    # -- helpers -----------------------------------------------------------------------------

    async def _step(
        self,
        row: InboundEvent,
        steps: list[str],
        step: str,
        *,
        history: Iterable[Entry] = (),
        **extra: Any,
    ) -> None:
        """Store a finished step on the event, with the history entries of what it wrote."""
        steps.append(step)
        payload = dict(row.payload) | {"_steps": steps} | {f"_{k}": v for k, v in extra.items()}
        row.payload = payload
        async with self.db.transaction() as session:
            await InboundEventRepository.from_session(session).set_payload(row.id, payload)
            await self._history(session, history)

    async def _history(self, session: AsyncSession, entries: Iterable[Entry]) -> None:
        await record_history(session, self.connection.id, entries)

    async def _contact(self, email: str) -> Contact | None:
        async with self.db.sessionmaker() as session:
            return await ContactRepository.from_session(session).by_email(self.connection.id, email)

    async def _find(self, email: str) -> list[Address]:
        return await self.onoffice.find_addresses_by_email(email)

    async def _address_ids(self, email: str, contact: Contact | None) -> list[int]:
        if contact is not None:
            return [contact.address_id]
        return [a.id for a in await self._find(email)]

    async def _activity_kind(self, event_type: ProviderEventType) -> tuple[str, str | None]:
        return await activity_kind(self.deps.kinds, self.tenant_id, self.onoffice, event_type)
