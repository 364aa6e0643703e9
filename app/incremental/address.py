"""The incremental push of one address (`push.push_addresses` calls it per address): the
person's plan (`app.contacts.person.plan_person`) carried out at the provider, and what the
provider answered recorded through the address's `LedgerWriter`, which `push_addresses` saves
in one transaction per address once the provider calls are done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from app.contacts.person import PersonPlan, dump_memory, load_memory, person_addresses, plan_person
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
from app.contacts.values import check_email, contact_from_address, contact_hash
from app.contacts.writer import LedgerWriter
from app.db.base import utcnow
from app.db.models import Connection, Contact
from app.db.session import Database
from onoffice_client.models import Address
from providers.base import FieldMapping, NewsletterProvider, ProviderContact, UpsertOutcome

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
    unrecorded: int = 0  # the ledger write of an address failed (logged; the others stand)


class AddressPush:
    """The push of one address at a time, decided by the consent rule (app.contacts.rules)."""

    def __init__(
        self,
        db: Database,
        provider: NewsletterProvider,
        connection: Connection,
        language: Any,
        held_back: frozenset[str],
        stats: PushStats,
        others: dict[str, list[Address]] | None = None,
        rows: dict[str, Contact | None] | None = None,
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
        # The ledger rows of the pushed emails, read with the batch (email -> row, None: no
        # row); an email this push has recorded something for is read again (`_by_email`).
        self.rows = dict(rows or {})

    async def one(self, address: Address, previous: Contact | None, ledger: LedgerWriter) -> None:
        """Push `address` (`previous`: the row its id owned) and record the outcome in
        `ledger`; a provider error leaves what was recorded before it in `ledger`."""
        check = check_email(address.email)
        if previous is not None and previous.email != check.email:
            self.rows.pop(previous.email, None)  # recorded below: read again if pushed again
        value = onoffice_value(address.newsletter, active=address.active)
        wants = value == YES and check.problem is None
        email = check.email
        now = utcnow()
        moved = False
        if previous is not None and previous.email != email:
            # What onOffice now says about the email this address used to have.
            seen = observe_onoffice(
                previous.onoffice_status, previous.onoffice_changed_at, "absent", now
            )
            ledger.observed(previous, Signal(seen.status, seen.at))
        if previous is not None and previous.subscribed and previous.email != email:
            if wants and await self._email_free(email, address.id):
                # The email changed in onOffice: move the provider contact (keeps its history).
                await self.provider.change_email(self.list_id, previous.email, email)
                ledger.moved(previous, email)
                moved = True
                self.stats.email_changes += 1
            else:
                await self.provider.set_subscription(self.list_id, previous.email, False)
                ledger.unsubscribed(previous, note="email")
                self.stats.unsubscribed += 1
        if check.problem is not None:
            return
        row = previous if moved else await self._by_email(email)
        self.rows.pop(email, None)
        plan = self._plan(address, email, row, now)
        ledger.person_seen(plan, row)
        if not plan.wants:
            await self._opt_out(plan, row, ledger)
            return
        if email in self.held_back:
            self.stats.skipped += 1  # a provider opt-out is on its way to onOffice: keep it
            return
        if row is not None and row.address_id != address.id and row.subscribed:
            self.stats.skipped += 1  # another address owns this email (the duplicate rule)
            ledger.duplicate(row, address.id)  # an opt-out from the provider reaches it too
            return
        onoffice = plan.signal.signal
        action = plan.action
        if action == Action.archived and row is not None and row.subscribed:
            # The person's newest signal is a removal the connector learned at another list
            # (a return to this one, `LifecycleRepository.carry_opt_outs`) while the ledger has
            # the member subscribed here: confirmed at the provider, it is removed here too
            # (archived; onOffice keeps its value).
            removal = provider_signal(row, None)
            assert removal.status is not None
            member = await self.provider.get_contact(self.list_id, email)
            if member is not None and member.status == SUBSCRIBED:
                await self.provider.archive_contact(self.list_id, email)
                self.stats.unsubscribed += 1
            else:
                self.stats.skipped += 1
            ledger.archived(row, removal.status, removal.at)
            return
        if action in (Action.bounced, Action.archived, Action.pending):
            self.stats.skipped += 1  # nothing sent, onOffice keeps its value
            return
        if action == Action.write_back:
            # The provider opt-out is newer than onOffice's "Yes": onOffice gets it.
            provider = provider_signal(row, None)
            assert row is not None and provider.status is not None
            said = {"onoffice_status": onoffice.status, "onoffice_changed_at": onoffice.at}
            ledger.opted_out(row, email, provider, seen={"address_id": address.id, **said})
            self.stats.written_back += 1
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
            ledger.observed(row, onoffice)
            self.stats.unchanged += 1
            return
        if action == Action.send:
            action = await self._removed_at_provider(address, email, row, now, ledger)
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
        if removed and self.provider.supports_tags and result.outcome != "rejected":
            await self.provider.set_tags(self.list_id, email, add=(), remove=removed)
        pushed = {
            "address_id": address.id,
            "onoffice_status": onoffice.status,
            "onoffice_changed_at": onoffice.at,
            "pushed_at": now,  # a full sync running now does not unsubscribe it
            "onoffice_addresses": dump_memory(plan.memory),
        }
        if result.outcome == UpsertOutcome.rejected:
            ledger.rejected(
                row,
                address_id=address.id,
                email=email,
                code=result.code,
                detail=result.detail,
                provider=self.provider.label,
                seen=pushed,
            )
            log.warning(
                "incremental.rejected",
                extra={
                    "connection_id": self.connection.id,
                    "address_id": address.id,
                    "reason": result.code,
                },
            )
        elif result.status and is_opt_out(result.status):
            # The provider kept an opt-out the connector had not heard of: onOffice gets it.
            kept = Signal(result.status, utcnow())
            pushed["synced_hash"] = fingerprint
            ledger.opted_out(row, email, kept, kept=True, seen=pushed)
        else:
            ledger.synced(
                row,
                address_id=address.id,
                email=email,
                fingerprint=fingerprint,
                tags=contact.tags,
                provider_id=result.provider_id,
                resubscribe=contact.resubscribe,
                status=result.status,
                seen=pushed,
                updated=result.outcome != UpsertOutcome.unchanged,
            )
        self.stats.upserted += 1

    async def _removed_at_provider(
        self, address: Address, email: str, row: Contact | None, now: Any, ledger: LedgerWriter
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
            ledger.archived(row, member.status, member.last_changed)
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

    async def _opt_out(self, plan: PersonPlan, row: Contact | None, ledger: LedgerWriter) -> None:
        """The person does not say Yes: unsubscribe it at the provider (Brevo: blacklist) when
        the plan says so, and carry an onOffice opt-out to its addresses still on Yes."""
        if plan.unsubscribe and row is not None:
            await self.provider.set_subscription(self.list_id, plan.email, False)
            ledger.unsubscribed(row)
            self.stats.unsubscribed += 1
        if plan.set_no and plan.signal.carrier is not None:
            ledger.person_opted_out(plan.email, plan.signal.carrier, plan.signal.signal)
            self.stats.written_back += 1

    async def _by_email(self, email: str) -> Contact | None:
        if email in self.rows:
            return self.rows[email]
        async with self.db.sessionmaker() as session:
            return await ContactRepository.from_session(session).by_email(self.connection.id, email)

    async def _email_free(self, email: str, address_id: int) -> bool:
        async with self.db.sessionmaker() as session:
            owner = await ContactRepository.from_session(session).owner_of(
                self.connection.id, email
            )
        return owner is None or owner == address_id
