"""Incremental sync, onOffice → provider: the push of changed addresses to the provider.

Both triggers (the "address saved" webhook, `drain.py`, and polling by modification time,
`poll.py`) feed `push_addresses`. An address is compared with what the connector last synced
(`contact`): equal values cause no provider call, which is also what ends echo loops (a provider
webhook applied to onOffice comes back as an "address saved" that changes nothing).

Per address: newsletter Yes → create/update the contact (names, greeting, tags added and
removed); an email change moves the provider contact; newsletter not Yes (No, cancellation, not
specified, DOI pending) or an archived address → unsubscribe (Brevo: blacklist). What to send is
decided by the consent rule (app.contacts.rules).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.contacts.ledger import write_back_opt_out, write_back_person_opt_out
from app.contacts.person import (
    PersonPlan,
    dump_memory,
    load_memory,
    person_addresses,
    plan_person,
)
from app.contacts.repository import ContactRepository, provider_signal
from app.contacts.rules import (
    REMOVED_STATES,
    SUBSCRIBED,
    YES,
    Action,
    Signal,
    is_opt_out,
    observe_onoffice,
    onoffice_value,
)
from app.contacts.tags import push_tags
from app.contacts.values import check_email, contact_from_address, contact_hash, normalise_email
from app.db.base import aware, utcnow
from app.db.models import Connection, Contact
from app.db.session import Database
from app.history.writer import INCREMENTAL, PROVIDER, Entry, action_entry, onoffice_seen
from app.history.writer import record as record_history
from app.i18n.reasons import stored_rejection
from app.incremental.failures import record_refusal, retry_later
from app.syncs.common import default_language
from app.webhooks.repository import InboundEventRepository
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import Address
from providers.base import (
    FieldMapping,
    NewsletterProvider,
    ProviderContact,
    ProviderError,
    ProviderTransientError,
    UpsertOutcome,
)

log = logging.getLogger(__name__)


@dataclass
class PushStats:
    upserted: int = 0
    unsubscribed: int = 0
    email_changes: int = 0
    unchanged: int = 0
    skipped: int = 0
    written_back: int = 0  # provider opt-outs newer than onOffice's Yes, sent to onOffice
    refused: int = 0  # the provider refused the change (recorded on the contact)
    retrying: int = 0  # transient failure: retried on its own


async def push_addresses(
    db: Database,
    provider: NewsletterProvider,
    connection: Connection,
    addresses: Sequence[Address],
    onoffice: OnOfficeClient | None = None,
) -> PushStats:
    """Bring the provider (the connection's client) in line with these onOffice addresses
    (idempotent). Each address's person (its email with all its onOffice addresses, read from
    `onoffice` in one request; without a client, the addresses not given keep the values last
    seen) is planned by `app.contacts.person.plan_person`; this executes the plan.

    One address never holds up the others: a change the provider refuses is recorded on the
    contact (`rejected_reason`, shown in the status) and a transient failure is queued to be
    retried on its own (an "address saved" event for that address)."""
    stats = PushStats()
    if not connection.list_id or not addresses:
        return stats
    language = default_language(connection)
    async with db.sessionmaker() as session:
        repo = ContactRepository.from_session(session)
        held_back = await InboundEventRepository.from_session(session).pending_opt_outs(
            connection.id
        )
        by_address = await repo.by_address_ids(connection.id, [a.id for a in addresses])
    others = await read_person_addresses(onoffice, addresses) if onoffice else None
    push = _Push(db, provider, connection, language, held_back, stats, others)
    for address in addresses:
        try:
            await push.one(address, by_address.get(address.id))
        except ProviderTransientError as exc:
            stats.retrying += 1
            await retry_later(db, connection, address.id, exc)
        except ProviderError as exc:
            stats.refused += 1
            await record_refusal(db, connection, address, exc.message)
    log.info("incremental.pushed", extra={"connection_id": connection.id, **stats.__dict__})
    return stats


class _Push:
    """The push of one address, decided by the consent rule (app.contacts.rules)."""

    def __init__(
        self,
        db: Database,
        provider: NewsletterProvider,
        connection: Connection,
        language: Any,
        held_back: frozenset[str],
        stats: PushStats,
        others: dict[str, list[Address]] | None = None,
    ) -> None:
        self.db = db
        self.provider = provider
        self.connection = connection
        assert connection.list_id is not None
        self.list_id = connection.list_id
        self.mapping = FieldMapping.model_validate(connection.field_mapping or {})
        self.language = language
        self.held_back = held_back
        self.stats = stats
        self.others = others

    async def one(self, address: Address, previous: Contact | None) -> None:
        check = check_email(address.email)
        value = onoffice_value(address.newsletter, active=address.active)
        wants = value == YES and check.problem is None
        email = check.email
        now = utcnow()
        if previous is not None and previous.email != email:
            # What onOffice now says about the email this address used to have.
            seen = observe_onoffice(
                previous.onoffice_status, previous.onoffice_changed_at, "absent", now
            )
            if (seen.status, seen.at) != (previous.onoffice_status, previous.onoffice_changed_at):
                await self._record(
                    previous.id, onoffice_status=seen.status, onoffice_changed_at=seen.at
                )
        if previous is not None and previous.subscribed and previous.email != email:
            if wants and await self._email_free(email, address.id):
                # The email changed in onOffice: move the provider contact (keeps its history).
                await self.provider.change_email(self.list_id, previous.email, email)
                await self._record(previous.id, email=email, rejected_reason=None, pushed_at=now)
                previous.email = email
                self.stats.email_changes += 1
            else:
                await self.provider.set_subscription(self.list_id, previous.email, False)
                await self._history(
                    action_entry(previous.email, PROVIDER, "unsubscribe", INCREMENTAL, note="email")
                )
                await self._record(
                    previous.id,
                    subscribed=False,
                    provider_status="unsubscribed",
                    provider_changed_at=now,
                    rejected_reason=None,
                )
                previous.subscribed = False
                self.stats.unsubscribed += 1
        if check.problem is not None:
            return
        async with self.db.sessionmaker() as session:
            row = await ContactRepository.from_session(session).by_email(self.connection.id, email)
        plan = self._plan(address, email, row, now)
        await self._remember(plan, row)
        if not plan.wants:
            await self._opt_out(plan, row, now)
            return
        if email in self.held_back:
            self.stats.skipped += 1  # a provider opt-out is on its way to onOffice: keep it
            return
        if row is not None and row.address_id != address.id and row.subscribed:
            self.stats.skipped += 1  # another address owns this email (the duplicate rule)
            others = list(row.other_address_ids or [])
            if address.id not in others:  # an opt-out from the provider reaches it too
                await self._record(row.id, other_address_ids=[*others, address.id])
            return
        onoffice = plan.signal.signal
        provider = provider_signal(row, None)
        action = plan.action
        if action in (Action.bounced, Action.archived):
            self.stats.skipped += 1  # not consent: nothing sent, onOffice keeps its value
            return
        if action == Action.write_back:
            # The provider opt-out is newer than onOffice's "Yes": onOffice gets it.
            assert row is not None and provider.status is not None
            async with self.db.transaction() as session:
                await ContactRepository.from_session(session).update(
                    row.id,
                    address_id=address.id,
                    onoffice_status=onoffice.status,
                    onoffice_changed_at=onoffice.at,
                )
                await write_back_opt_out(
                    session, self.connection.provider, self.connection.id, email, provider
                )
            self.stats.written_back += 1
            return
        if action == Action.pending:
            self.stats.skipped += 1
            return
        contact = contact_from_address(address, email, self.language)
        fingerprint = contact_hash(contact)
        previous_tags = sorted(row.tags or []) if row is not None and row.synced_hash else []
        if (
            row is not None
            and action == Action.send
            and row.subscribed
            and row.synced_hash == fingerprint
            and previous_tags == contact.tags
        ):
            if (row.onoffice_status, row.onoffice_changed_at) != (onoffice.status, onoffice.at):
                await self._record(
                    row.id, onoffice_status=onoffice.status, onoffice_changed_at=onoffice.at
                )
            self.stats.unchanged += 1
            return
        if action == Action.send:
            action = await self._removed_at_provider(address, email, row, now)
            if action == Action.archived:
                return
        contact.resubscribe = action == Action.resubscribe
        # Tags by three-way merge (app.contacts.tags): onOffice's additions and removals since
        # the last sync; a tag the provider removed since then is not added back.
        base = row.tags if row is not None and row.synced_hash else None
        added, removed = push_tags(base, contact.tags)
        sent = contact
        if self.provider.supports_tags:
            sent = contact.model_copy(update={"tags": added})
        result = await self.provider.upsert_contact(self.list_id, sent, self.mapping)
        if removed and self.provider.supports_tags and result.outcome != UpsertOutcome.rejected:
            await self.provider.set_tags(self.list_id, email, add=(), remove=removed)
        async with self.db.transaction() as session:
            repo = ContactRepository.from_session(session)
            if row is None:
                row = Contact(
                    connection_id=self.connection.id, address_id=address.id, email=email, tags=[]
                )
                repo.add(row)
                await repo.flush()
            values: dict[str, Any] = {
                "address_id": address.id,
                "onoffice_status": onoffice.status,
                "onoffice_changed_at": onoffice.at,
                "pushed_at": now,  # a full sync running now does not unsubscribe it
                "onoffice_addresses": dump_memory(plan.memory),
            }
            if result.outcome == UpsertOutcome.rejected:
                stored = stored_rejection(result.code, result.detail, self.provider.label)
                values |= {"synced_hash": None, "rejected_reason": stored}
                log.warning(
                    "incremental.rejected",
                    extra={
                        "connection_id": self.connection.id,
                        "address_id": address.id,
                        "reason": result.code,
                        "detail": result.detail,
                    },
                )
            elif result.status and is_opt_out(result.status):
                # The provider kept an opt-out the connector had not heard of: onOffice gets it.
                kept = Signal(result.status, utcnow())
                values |= {"subscribed": False, "provider_status": kept.status}
                values |= {"provider_changed_at": kept.at, "synced_hash": fingerprint}
                await write_back_opt_out(
                    session, self.connection.provider, self.connection.id, email, kept
                )
            else:
                if not row.subscribed or row.provider_status != SUBSCRIBED:
                    value = "resubscribe" if contact.resubscribe else "subscribe"
                    await record_history(
                        session,
                        self.connection.id,
                        [action_entry(email, PROVIDER, value, INCREMENTAL, address_id=address.id)],
                    )
                values |= {
                    "synced_hash": fingerprint,
                    "tags": list(contact.tags),
                    "subscribed": result.status in (None, SUBSCRIBED),
                    "provider_status": result.status or SUBSCRIBED,
                    "provider_changed_at": utcnow(),
                    "provider_id": result.provider_id or row.provider_id,
                    "rejected_hash": None,
                    "rejected_reason": None,
                }
            await repo.update(row.id, **values)
        self.stats.upserted += 1

    async def _removed_at_provider(
        self, address: Address, email: str, row: Contact | None, now: Any
    ) -> Action:
        """Mailchimp's upsert re-adds an archived member (a PUT "unarchives" it, even with
        `status_if_new` only), so before sending a contact the ledger does not know as removed
        the provider is asked. A removal whose webhook was lost is then planned like the full
        sync's read of it (`Action.archived`: nothing sent, nothing written to onOffice, listed
        as archived at the provider), unless onOffice's Yes is a fresh consent after it."""
        member = await self.provider.get_contact(self.list_id, email)
        if member is None or member.status not in REMOVED_STATES:
            return Action.send
        plan = self._plan(address, email, row, now, member)
        if plan.action != Action.resubscribe:
            self.stats.skipped += 1
            if row is not None:
                await self._record(
                    row.id,
                    subscribed=False,
                    provider_status=member.status,
                    provider_changed_at=member.last_changed,
                )
            return Action.archived
        return Action.resubscribe

    @staticmethod
    def _provider_signal(row: Contact | None, member: ProviderContact | None) -> Signal:
        """The provider's signal: the member just read (its state is the truth), else the
        ledger's."""
        if member is not None:
            return Signal(member.status, member.last_changed)
        return provider_signal(row, None)

    def _plan(
        self,
        address: Address,
        email: str,
        row: Contact | None,
        now: Any,
        member: ProviderContact | None = None,
    ) -> PersonPlan:
        """The plan of the person this address belongs to (its email, all its addresses);
        `member`: the provider's contact just read, when it was."""
        seen, complete = person_addresses(email, [address], self.others)
        memory = load_memory(
            row.onoffice_addresses if row else None,
            owner=row.address_id if row else None,
            ledger=Signal(row.onoffice_status, row.onoffice_changed_at) if row else Signal(None),
        )
        return plan_person(
            email,
            seen,
            memory,
            self._provider_signal(row, member),
            now,
            subscribed=row.subscribed if row else None,
            complete=complete,
        )

    async def _remember(self, plan: PersonPlan, row: Contact | None) -> None:
        """The ledger row learns the person's signal and what was seen of each address."""
        said = (plan.signal.status, plan.signal.at)
        if row is None or (row.onoffice_status, aware(row.onoffice_changed_at)) != said:
            await self._history(onoffice_seen(plan.email, plan.signal, INCREMENTAL))
        if row is None:
            return
        values: dict[str, Any] = {"onoffice_addresses": dump_memory(plan.memory)}
        values |= {"onoffice_status": plan.signal.status, "onoffice_changed_at": plan.signal.at}
        if any(getattr(row, name) != value for name, value in values.items()):
            await self._record(row.id, **values)

    async def _opt_out(self, plan: PersonPlan, row: Contact | None, now: Any) -> None:
        """The person does not say Yes: unsubscribe it at the provider (Brevo: blacklist) when
        the plan says so, and carry an onOffice opt-out to its addresses still on Yes."""
        if plan.unsubscribe and row is not None:
            await self.provider.set_subscription(self.list_id, plan.email, False)
            await self._history(action_entry(plan.email, PROVIDER, "unsubscribe", INCREMENTAL))
            await self._record(
                row.id,
                subscribed=False,
                provider_status="unsubscribed",
                provider_changed_at=now,
                rejected_reason=None,
            )
            self.stats.unsubscribed += 1
        if plan.set_no and plan.signal.carrier is not None:
            async with self.db.transaction() as session:
                await write_back_person_opt_out(
                    session,
                    self.connection.provider,
                    self.connection.id,
                    plan.email,
                    plan.signal.carrier,
                    plan.signal.signal,
                )
            self.stats.written_back += 1

    async def _history(self, *entries: Entry) -> None:
        async with self.db.transaction() as session:
            await record_history(session, self.connection.id, entries)

    async def _record(self, contact_id: int, **values: Any) -> None:
        async with self.db.transaction() as session:
            await ContactRepository.from_session(session).update(contact_id, **values)

    async def _email_free(self, email: str, address_id: int) -> bool:
        async with self.db.sessionmaker() as session:
            owner = await ContactRepository.from_session(session).owner_of(
                self.connection.id, email
            )
        return owner is None or owner == address_id


async def read_person_addresses(
    onoffice: OnOfficeClient, addresses: Sequence[Address]
) -> dict[str, list[Address]]:
    """Every onOffice address (any Newsletter value, archived ones too) with these addresses'
    valid emails, by normalised email, in one request: a person is decided from all of its
    addresses (the full sync's pages hold only the newsletter-Yes ones). Invalid emails are
    not asked for: they are problems, never a person (and a few invalid values such as "a@b",
    each carried by many addresses, would make every read page through all of them)."""
    checks = (check_email(a.email) for a in addresses)
    emails = sorted({c.email for c in checks if c.problem is None})
    found = await onoffice.find_addresses_by_emails(emails)
    people: dict[str, list[Address]] = {}
    for address in (a for group in found.values() for a in group):
        people.setdefault(normalise_email(address.email), []).append(address)
    return people
