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

import logging
from collections import defaultdict
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.confirm import may_create
from app.contacts.repository import ContactRepository
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
    activity_note,
    activity_time,
    forget_kinds,
)
from app.webhooks.apply import EventApplier
from app.webhooks.confirming import confirm_rows
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
    settle,
)
from app.webhooks.plan import (
    ACTIVITY_UNSURE,
    NO_ADDRESS,
    Plan,
    Record,
    Stop,
    emails_of,
    event_of,
    is_echo,
)
from onoffice_client.models import (
    ActivityCreate,
    Address,
    AddressUpdate,
    NewsletterStatus,
    OnOfficeError,
    OnOfficeTransientError,
)
from onoffice_client.transport import Action, RequestsFailed
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
        await self._look_up_or_stop(rows, [e for row in rows for e in emails_of(row)], known)
        await self._confirm(rows)
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
        failed |= await self._write(grouped)
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
            removal: Record = (Signal(state, at), target, contact, None)
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
        kind, type_ = await self.applier._activity_kind(event.type)
        plan.activity = ActivityCreate(
            address_ids=list(ids),
            kind=kind,
            type=type_,
            note=activity_note(self.connection.provider, event, self.applier.language),
            at=activity_time(event, plan.row.received_at),
        )

    # -- writing -----------------------------------------------------------------------------

    async def _write(self, plans: Sequence[Plan]) -> set[str]:
        """Send the grouped actions, then settle every plan by its own actions' outcomes."""
        await self._skip_written_activities(plans)
        actions: list[Action] = []
        owners: list[list[tuple[Plan, str]]] = []  # per action: the plans and step it serves
        for plan in plans:
            for address_id, target in plan.modifies:
                action = self.onoffice.address_action(address_id, AddressUpdate(newsletter=target))
                if action is not None:
                    actions.append(action)
                    owners.append([(plan, "status")])
        merged: dict[tuple[Any, ...], list[Plan]] = defaultdict(list)
        for plan in plans:
            if plan.activity is not None:
                a = plan.activity
                merged[(a.kind, a.type, a.note, a.at)].append(plan)
        for group in merged.values():
            first = group[0].activity
            assert first is not None
            ids = sorted({i for p in group for i in (p.activity.address_ids if p.activity else [])})
            actions.append(
                self.onoffice.activity_action(first.model_copy(update={"address_ids": ids}))
            )
            owners.append([(p, "activity") for p in group])
        outcomes: list[Any] = []
        stop: OnOfficeError | None = None
        if actions:
            try:
                outcomes = await self.onoffice.run_each(actions)
            except RequestsFailed as exc:
                outcomes, stop = exc.done, exc.error
        errors: dict[int, OnOfficeError] = {}
        step_ok: dict[int, dict[str, bool]] = defaultdict(dict)
        # The request that failed may have been applied: its activities may exist now.
        lost = isinstance(stop, OnOfficeTransientError) and stop.maybe_applied
        unsure: set[int] = set()
        for index, served in enumerate(owners):
            outcome = outcomes[index] if index < len(outcomes) else stop
            good = isinstance(outcome, dict)
            for plan, step in served:
                # A step is done only when all of its actions are (several modifies per email).
                step_ok[id(plan)][step] = step_ok[id(plan)].get(step, True) and good
                if not good:
                    error = outcome if isinstance(outcome, OnOfficeError) else None
                    errors.setdefault(id(plan), error or OnOfficeError("not sent"))
                    if lost and step == "activity" and index >= len(outcomes):
                        unsure.add(id(plan))
        if any(step_ok[id(p)].get("activity") is False for p in plans):
            forget_kinds(self.applier.deps.kinds, self.applier.tenant_id)  # a changed kind or type?
        done_steps = {
            id(p): {step for step, good in step_ok[id(p)].items() if good}
            | ({ACTIVITY_UNSURE} if id(p) in unsure else set())
            for p in plans
        }
        succeeded = [p for p in plans if all(step_ok[id(p)].values())]
        done = {id(p) for p in succeeded}
        failed = [p for p in plans if id(p) not in done]  # by identity: a Plan compares by value
        await settle(
            self.db, self.connection.id, succeeded, failed, done_steps, errors, self.max_attempts
        )
        for plan in succeeded:
            if plan.record is not None:
                self._remember(plan)
        if stop is not None and not isinstance(stop, WAITS_FOR_ONOFFICE) and failed:
            raise Stop(attempts=max(p.row.attempts for p in failed))
        if failed and any(isinstance(e, WAITS_FOR_ONOFFICE) for e in errors.values()):
            raise Stop(waiting_for_login=True)
        return {p.email for p in failed}

    async def _skip_written_activities(self, plans: Sequence[Plan]) -> None:
        """An activity an earlier try sent without learning the answer (ACTIVITY_UNSURE) is
        sent only to the addresses that do not have it; when all have it, it is done."""
        unsure = [p for p in plans if p.activity is not None and ACTIVITY_UNSURE in p.steps]
        if not unsure:
            return
        items = [p.activity for p in unsure if p.activity is not None]
        missing = await self._or_stop(
            [p.row for p in plans], self.onoffice.missing_activities(items)
        )
        for plan, item in zip(unsure, missing, strict=True):
            plan.activity = item

    def _remember(self, plan: Plan) -> None:
        """The written values, for the next wave's decisions."""
        targets = dict(plan.modifies)
        if targets:
            self.addresses[plan.email] = [
                a.model_copy(update={"newsletter": targets[a.id]}) if a.id in targets else a
                for a in self.addresses.get(plan.email, [])
            ]

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
