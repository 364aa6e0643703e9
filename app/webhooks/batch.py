"""Apply a batch of one connection's events with few round trips.

A batch looks up its contacts in one database read and its onOffice addresses in one request,
decides every event through the same rules as `EventApplier` (`judge_event`, echoes, "not
specified" never over No), and writes onOffice in grouped requests: the modify actions of all
events and their activities (one agentslog action per kind, type, note and time, listing every
address) travel several to a request. Each event owns its actions, so an action onOffice
rejects fails that event alone; the finished steps are stored on the event, so a retry never
writes anything twice.

Order: an email appears at most once per wave; a second event for it waits for the next wave,
after the first one's writes are known. When an event fails, later events of its email stay
pending behind it. Rare events (a new sign-up that creates an address, an email change, a sent
campaign) are applied one by one by `EventApplier`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.confirm import ledger_learns, may_create
from app.contacts.repository import ContactRepository, provider_signal
from app.contacts.rules import (
    BOUNCE_STATES,
    SUBSCRIBED,
    EventVerdict,
    Signal,
    aware,
    event_state,
    may_overwrite,
    onoffice_target,
)
from app.contacts.values import normalise_email
from app.db.models import Contact, InboundEvent, InboundEventStatus
from app.syncs.repository import SyncRepository
from app.webhooks.activities import (
    OPTIONAL_ACTIVITIES,
)
from app.webhooks.apply import EventApplier
from app.webhooks.confirming import confirm_rows
from app.webhooks.grouped import write_grouped
from app.webhooks.nonconsent import (
    ALREADY_RECORDED,
    DISMISSED_NOTE,
    bounce_activity_ids,
    bounce_repeat,
)
from app.webhooks.outcomes import (
    WAITS_FOR_ONOFFICE,
    finish_event,
    record_failure,
    record_failures,
)
from app.webhooks.plan import (
    NO_ADDRESS,
    Plan,
    Record,
    Stop,
    emails_of,
    event_of,
    is_echo,
)
from onoffice_client.models import (
    Address,
    NewsletterStatus,
    OnOfficeError,
    OnOfficeTransientError,
)
from providers.base import ProviderError, ProviderEvent, ProviderEventType, ProviderTransientError

log = logging.getLogger(__name__)

T = TypeVar("T")


class BatchApplier:
    def __init__(self, applier: EventApplier) -> None:
        self.applier = applier
        self.db = applier.db
        self.max_attempts = applier.deps.settings.INBOUND_EVENT_MAX_ATTEMPTS
        self.connection = applier.connection
        self.onoffice = applier.onoffice
        self.addresses: dict[str, list[Address]] = {}
        self.contacts: dict[str, Contact] = {}

    # -- lookups -----------------------------------------------------------------------------

    async def read_ledger(self, session: AsyncSession, emails: Sequence[str]) -> list[int]:
        """The contacts of these emails (into `contacts`) and the address ids known to carry
        one of them (the contact's, the duplicates the full syncs reported and those the
        incremental sync saw), in the caller's session."""
        wanted = sorted({e for e in emails if e})
        self.contacts.update(
            await ContactRepository.from_session(session).by_emails(self.connection.id, wanted)
        )
        known = await SyncRepository.from_session(session).duplicate_address_ids(
            self.connection.id, wanted
        )
        for email in wanted:
            if (contact := self.contacts.get(email)) is not None:
                known += [contact.address_id, *(contact.other_address_ids or [])]
        return known

    async def look_up(self, emails: Sequence[str], known: list[int] | None = None) -> None:
        """Contacts (one read, unless the caller's `known` came from `read_ledger`) and
        onOffice addresses (one request) of these emails."""
        wanted = sorted({e for e in emails if e})
        if known is None:
            async with self.db.sessionmaker() as session:
                known = await self.read_ledger(session, wanted)
        found = await self.onoffice.find_addresses_by_emails(wanted, known_ids=known)
        for email in wanted:
            self.addresses[email] = found.get(email.casefold(), [])

    async def _look_up_or_stop(
        self, rows: Sequence[InboundEvent], emails: Sequence[str], known: list[int] | None = None
    ) -> None:
        """`look_up`, or stop the drain (`_or_stop`)."""
        await self._or_stop(rows, self.look_up(emails, known))

    async def _or_stop(self, rows: Sequence[InboundEvent], call: Awaitable[T]) -> T:
        """Await an onOffice read; when onOffice cannot answer, the events stay pending (one
        more try counted) and the drain stops: retried after a backoff, or after a login."""
        try:
            return await call
        except OnOfficeError as exc:
            await record_failures(self.db, rows, exc, self.max_attempts)
            if isinstance(exc, WAITS_FOR_ONOFFICE):
                raise Stop(waiting_for_login=True) from exc
            raise Stop(attempts=max(r.attempts for r in rows)) from exc

    async def _confirm(self, rows: Sequence[InboundEvent]) -> None:
        """Confirm the consent and identity events against the provider's current state
        (`app.webhooks.confirming`); when the provider cannot be read they stay pending (one
        more try counted) and the drain backs off."""
        applier = self.applier
        applier.confirmed = {}
        if self.connection.list_id is None:
            return
        try:
            applier.confirmed = await confirm_rows(
                applier.deps.provider(self.connection),
                self.connection.list_id,
                applier._label,
                rows,
                self.contacts,
                applier.states,
            )
        except ProviderError as exc:
            await record_failures(self.db, rows, exc, self.max_attempts)
            raise Stop(attempts=max(r.attempts for r in rows)) from exc

    async def _look_up_confirming(
        self, rows: Sequence[InboundEvent], emails: Sequence[str], known: list[int]
    ) -> None:
        """`_look_up_or_stop` and `_confirm` at once (the ledger rows are read): the provider
        is read while onOffice looks up. One failure is counted: a failed confirmation calls
        the lookup off."""
        lookup = asyncio.ensure_future(self.look_up(emails, known))
        try:
            await self._confirm(rows)
        except BaseException:
            lookup.cancel()
            with contextlib.suppress(BaseException):
                await lookup
            raise
        await self._or_stop(rows, lookup)

    async def _refresh_contacts(self, emails: Sequence[str]) -> None:
        async with self.db.sessionmaker() as session:
            fresh = await ContactRepository.from_session(session).by_emails(
                self.connection.id, emails
            )
        for email in emails:
            self.contacts.pop(email, None)
        self.contacts.update(fresh)

    # -- one batch ---------------------------------------------------------------------------

    async def apply(self, rows: Sequence[InboundEvent], known: list[int] | None = None) -> set[str]:
        """Apply `rows` (in arrival order) in waves; the emails whose events stay pending.
        `known`: what `read_ledger` returned for their emails, when the caller read it."""
        emails = [e for row in rows for e in emails_of(row)]
        settling = self.applier.settling
        if settling.emails.intersection(emails):
            # An email of the batch still settling: its ledger rows are read once committed.
            await settling.wait()
            known = None
        if known is None:
            await self._look_up_or_stop(rows, emails, known)
            await self._confirm(rows)
        else:
            await self._look_up_confirming(rows, emails, known)
        blocked: set[str] = set()
        remaining = list(rows)
        first = True
        while remaining:
            wave: list[InboundEvent] = []
            later: list[InboundEvent] = []
            used: set[str] = set()
            for row in remaining:
                keys = emails_of(row)
                if keys & blocked:
                    continue
                if keys & used:
                    later.append(row)
                else:
                    wave.append(row)
                    used |= keys
            if not first:
                await self.applier.settling.wait()  # the earlier wave's outcomes
                await self._refresh_contacts(sorted(used))
                # Emails a single event wrote to are read from onOffice again.
                missing = [e for e in used if e not in self.addresses and "@" in e]
                if missing:
                    await self._look_up_or_stop(wave, missing)
            first = False
            blocked |= await self._apply_wave(wave)
            remaining = later
        return blocked

    async def _apply_wave(self, wave: Sequence[InboundEvent]) -> set[str]:
        failed: set[str] = set()
        plans: list[Plan] = []
        for row in wave:
            try:
                plans.append(await self._plan(row))
            except ProviderError as exc:
                await record_failures(self.db, [row], exc, self.max_attempts)
                failed.add(normalise_email(event_of(row).email))
        for plan in [p for p in plans if p.single]:
            if not await self._apply_single(plan.row):
                failed |= emails_of(plan.row)
        grouped = [p for p in plans if not p.single]
        failed |= await write_grouped(self, grouped)
        return failed

    # -- deciding ----------------------------------------------------------------------------

    async def _plan(self, row: InboundEvent) -> Plan:
        """The same decisions as `EventApplier.apply`, without writing."""
        confirmation = self.applier.confirmed.get(row.id)
        event = confirmation.event if confirmation is not None else event_of(row)
        email = normalise_email(event_of(row).email)
        plan = Plan(row, email, steps=list(row.payload.get("_steps") or []))
        if event is None:
            assert confirmation is not None
            return self._done(plan, InboundEventStatus.unconfirmed, confirmation.reason)
        kind = event.type
        contact = self.contacts.get(email)
        if event.raw_type == "campaign" and event.campaign:
            plan.single = True
            return plan
        if kind in (ProviderEventType.ignored, ProviderEventType.profile):
            return self._done(
                plan, InboundEventStatus.ignored, f"{event.raw_type}: nothing to apply"
            )
        if kind == ProviderEventType.email_changed:
            plan.single = True
            return plan
        state = event_state(kind.value)
        if state is not None:
            verdict = self.applier._verdict(row, event, contact)
            if verdict == EventVerdict.stale:
                return self._done(
                    plan, InboundEventStatus.ignored, "older than the consent state already known"
                )
            if verdict == EventVerdict.dismissed:
                return self._done(plan, InboundEventStatus.ignored, DISMISSED_NOTE)
            if (
                verdict == EventVerdict.confirm
                and confirmation is None
                and not await self.applier._confirmed(email, kind)
            ):
                return self._done(
                    plan,
                    InboundEventStatus.ignored,
                    f"{self.applier._label} no longer shows this opt-out",
                )
        at = event.occurred_at or aware(row.received_at)
        addresses = self.addresses.get(email, [])
        if kind == ProviderEventType.subscribe:
            if contact is not None and contact.provider_status == SUBSCRIBED and contact.subscribed:
                return self._done(
                    plan, InboundEventStatus.ignored, "already subscribed (echo of the connector)"
                )
            if not addresses:
                if "create" not in plan.steps and not may_create(event, confirmation):
                    return self._done(plan, InboundEventStatus.ignored, NO_ADDRESS)
                plan.single = True  # a new address (or one created by an earlier try)
                return plan
            record: Record = (Signal(SUBSCRIBED, at), NewsletterStatus.yes, None, addresses[0].id)
            if is_echo(plan.steps, addresses, NewsletterStatus.yes):
                plan.record = record
                return self._done(
                    plan, InboundEventStatus.ignored, "already subscribed in onOffice (echo)"
                )
            return await self._status_writes(plan, event, addresses, NewsletterStatus.yes, record)
        if state in BOUNCE_STATES:  # not consent (app.webhooks.nonconsent)
            plan.record = (Signal(state, at), None, contact, addresses[0].id if addresses else None)
            if bounce_repeat(event, contact, plan.steps):
                return self._done(plan, InboundEventStatus.ignored, ALREADY_RECORDED)
            ids = bounce_activity_ids(self.connection, event, contact, addresses)
            await self._with_activity(plan, event, ids)
            return plan
        if kind in (ProviderEventType.unsubscribe, ProviderEventType.deleted):
            assert state is not None
            target = onoffice_target(state)
            assert target is not None
            learnt = ledger_learns(confirmation, Signal(state, at), provider_signal(contact, None))
            removal: Record = (learnt, target, contact, None)
            if event.raw_type == "person":
                return await self._status_writes(plan, event, addresses, target, None)
            if is_echo(plan.steps, addresses, target):
                plan.record = removal
                echo = (
                    "nothing to change in onOffice"
                    if kind == ProviderEventType.deleted
                    else "not subscribed in onOffice (echo)"
                )
                return self._done(plan, InboundEventStatus.ignored, echo)
            return await self._status_writes(plan, event, addresses, target, removal)
        option = OPTIONAL_ACTIVITIES.get(kind)
        if option is None or not (self.connection.activities or {}).get(option):
            return self._done(
                plan, InboundEventStatus.ignored, f"activities for {kind.value} are switched off"
            )
        ids = [contact.address_id] if contact is not None else [a.id for a in addresses]
        await self._with_activity(plan, event, ids)
        return plan

    @staticmethod
    def _done(plan: Plan, status: str, note: str | None) -> Plan:
        plan.status, plan.note = status, note
        return plan

    async def _status_writes(
        self,
        plan: Plan,
        event: ProviderEvent,
        addresses: Sequence[Address],
        target: NewsletterStatus,
        record: Record | None,
    ) -> Plan:
        if event.raw_type == "person":
            # An onOffice opt-out carried to the person's other addresses (app/contacts/
            # person.py): only those still on Yes change; the provider state is the executor's.
            addresses = [a for a in addresses if a.newsletter == NewsletterStatus.yes]
            if not addresses and "status" not in plan.steps:
                return self._done(plan, InboundEventStatus.ignored, "no address says Yes any more")
            record = None
        if "status" not in plan.steps:
            # Every address with this email: a duplicate left on "Yes" would re-subscribe the
            # person on the next full sync (the lost-unsubscribe problem).
            plan.modifies = [
                (a.id, target) for a in addresses if may_overwrite(a.newsletter, target)
            ]
        await self._with_activity(plan, event, [a.id for a in addresses])
        plan.record = record
        return plan

    async def _with_activity(self, plan: Plan, event: ProviderEvent, ids: Sequence[int]) -> None:
        if "activity" in plan.steps or not ids:
            return
        plan.activity = await self.applier.activity_item(plan.row, event, ids)

    async def _apply_single(self, row: InboundEvent) -> bool:
        """One rare event through `EventApplier`; False when it stays pending."""
        try:
            status, note = await self.applier.apply(row)
        except WAITS_FOR_ONOFFICE as exc:
            await record_failure(self.db, row, exc, self.max_attempts, True)
            raise Stop(waiting_for_login=True) from exc
        except (OnOfficeError, ProviderError) as exc:
            transient = isinstance(exc, OnOfficeTransientError | ProviderTransientError)
            await record_failure(self.db, row, exc, self.max_attempts, True)
            if transient and isinstance(exc, OnOfficeError):
                raise Stop(attempts=row.attempts) from exc
            return False
        # What it wrote is known only to onOffice: read the email's addresses again if needed.
        for email in emails_of(row):
            self.addresses.pop(email, None)
        await finish_event(self.db, row, status, note)
        return True
