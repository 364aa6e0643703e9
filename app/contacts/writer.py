"""The ledger writer: what the full sync and the incremental push record, as domain verbs.

A verb writes what belongs together: the contact row (`contact`), the full sync's problem row,
the consent history entry and the event that carries an opt-out to onOffice. A `LedgerWriter`
collects one unit of work's verbs in memory (the push: one address, after the provider
answered; the full sync: one batch's results or one page's decision) and `save` writes them in
the caller's transaction, a few statements for many rows; the SQL stays in the repositories.
A verb on an ORM contact no session holds also shows its values on it (the push reads it again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.fullsync.verbs import RunVerbs
from app.contacts.ledger import write_back_opt_out, write_back_person_opt_out
from app.contacts.person import PersonPlan, dump_memory
from app.contacts.repository import ContactRepository
from app.contacts.rules import SUBSCRIBED, Signal
from app.contacts.writer_base import Refusal, Row
from app.db.base import aware, utcnow
from app.db.models import Connection, Contact
from app.history.writer import (
    FULL_SYNC,
    INCREMENTAL,
    PROVIDER,
    action_entry,
    onoffice_seen,
    provider_update,
)
from app.history.writer import record as record_history
from app.i18n import reasons
from app.syncs.repository import SyncRepository
from providers.base import RejectReason

REJECTED = "rejected by the provider"


class LedgerWriter(RunVerbs):
    """The ledger writes of one unit of work (see the module). `for_run`: a full sync's (its
    problems and history name the run; a contact without a row gets none, the page creates
    rows; its own verbs in `app/contacts/fullsync/verbs.py`); `for_push`: the incremental
    push's (a contact without a row gets one)."""

    @classmethod
    def for_run(cls, connection: Connection, run_id: int) -> LedgerWriter:
        return cls(connection.id, FULL_SYNC, run_id, provider=connection.provider)

    @classmethod
    def for_push(cls, connection: Connection) -> LedgerWriter:
        return cls(connection.id, INCREMENTAL, provider=connection.provider, creates=True)

    # The provider's answers --------------------------------------------------------------------

    def synced(
        self,
        row: Row | None,
        *,
        address_id: int,
        email: str,
        fingerprint: str,
        tags: Sequence[str],
        provider_id: str | None = None,
        resubscribe: bool = False,
        status: str | None = None,
        seen: Mapping[str, Any] | None = None,
        updated: bool = False,
    ) -> None:
        """The provider took the contact (`status`: the state it answered, None = subscribed);
        a subscribe the ledger did not show yet goes into the history, and so does a data-only
        update (`updated`: the provider changed a subscribed contact's fields or tags; an
        unchanged re-read records nothing). `seen`: further columns the caller observed (the
        push: the address, onOffice's signal, the push time)."""
        if row is None or not row.subscribed or row.provider_status != SUBSCRIBED:
            value = "resubscribe" if resubscribe else "subscribe"
            self._entry(
                action_entry(
                    email, PROVIDER, value, self.source, self.run_id, address_id=address_id
                )
            )
        elif updated:
            self._entry(
                provider_update(
                    email,
                    self.source,
                    self.run_id,
                    address_id=address_id,
                    before=(row.synced_hash, row.tags),
                    after=(fingerprint, tags),
                )
            )
        values = {
            "synced_hash": fingerprint,
            "rejected_hash": None,
            "rejected_reason": None,
            "tags": list(tags),
            "subscribed": status in (None, SUBSCRIBED),
            "provider_status": status or SUBSCRIBED,
            "provider_changed_at": utcnow(),  # after the provider answered
            "provider_id": provider_id or (row.provider_id if row is not None else None),
        }
        self._write(row, address_id, email, {**(seen or {}), **values})

    def rejected(
        self,
        row: Row | None,
        *,
        address_id: int,
        email: str,
        code: RejectReason | None,
        detail: str | None,
        provider: str,
        rejected_hash: str | None = None,
        seen: Mapping[str, Any] | None = None,
    ) -> None:
        """The provider refused the contact's values (`code`: why, `detail`: the provider's own
        words, `provider`: its label for the labelled original): the coded reason on the row
        (and, with `rejected_hash`, the values it refused: not sent again unchanged), a full
        sync's problem row."""
        if self.run_id is not None:
            self._rejection(address_id, email, code, detail, provider)
        values: dict[str, Any] = {
            "synced_hash": None,
            "rejected_reason": reasons.stored_rejection(code, detail, provider),
        }
        if rejected_hash is not None:
            values["rejected_hash"] = rejected_hash
        self._write(row, address_id, email, {**(seen or {}), **values})

    def refused(self, address_id: int, email: str | None, reason: str) -> None:
        """The incremental push's change the provider refused with an error: the reason on the
        address's row (found by address, else by email; created when there is none)."""
        self._refusals.append(Refusal(address_id, email, reason[:2000]))

    def opted_out(
        self,
        row: Row | None,
        email: str,
        signal: Signal,
        *,
        kept: bool = False,
        seen: Mapping[str, Any] | None = None,
    ) -> None:
        """A provider opt-out onOffice has not heard of goes to onOffice (an event for the
        webhook applier); `kept`: the provider answered a send with it (the row records it);
        `seen`: further columns the caller observed."""
        self._opt_outs.append((email, signal))
        values = dict(seen or {})
        if kept:
            values |= {"subscribed": False, "provider_status": signal.status}
            values |= {"provider_changed_at": signal.at}
        if values and (row is not None or self.creates):
            self._write(row, values.get("address_id"), email, values)

    def unsubscribed(self, row: Row, *, note: str | None = None) -> None:
        """The connector unsubscribed the contact at the provider (Brevo: blacklisted)."""
        self._entry(
            action_entry(row.email, PROVIDER, "unsubscribe", self.source, self.run_id, note=note)
        )
        values = {"subscribed": False, "provider_status": "unsubscribed"}
        values |= {"provider_changed_at": self.now, "rejected_reason": None}
        self._write(row, row.address_id, row.email, values)

    def archived(self, row: Row | None, status: str, at: Any) -> None:
        """The provider shows the contact archived or deleted: nothing sent, the state kept."""
        if row is not None:
            values = {"subscribed": False, "provider_status": status, "provider_changed_at": at}
            self._write(row, row.address_id, row.email, values)

    def moved(self, row: Row, email: str) -> None:
        """The provider contact moved to the address's new email."""
        self._write(
            row,
            row.address_id,
            email,
            {"email": email, "rejected_reason": None, "pushed_at": self.now},
        )

    # What onOffice says ------------------------------------------------------------------------

    def observed(self, row: Row, signal: Signal) -> None:
        """onOffice's signal for the contact's email, when it changed."""
        if (row.onoffice_status, row.onoffice_changed_at) != (signal.status, signal.at):
            values = {"onoffice_status": signal.status, "onoffice_changed_at": signal.at}
            self._write(row, row.address_id, row.email, values)

    def person_seen(self, plan: PersonPlan, row: Row | None) -> None:
        """The person's signal (from all its addresses) and what was seen of each address;
        a changed signal goes into the history."""
        said = (plan.signal.status, plan.signal.at)
        if row is None or (row.onoffice_status, aware(row.onoffice_changed_at)) != said:
            self._entry(onoffice_seen(plan.email, plan.signal, self.source, self.run_id))
        if row is None:
            return
        values: dict[str, Any] = {"onoffice_addresses": dump_memory(plan.memory)}
        values |= {"onoffice_status": plan.signal.status, "onoffice_changed_at": plan.signal.at}
        if any(getattr(row, name) != value for name, value in values.items()):
            self._write(row, row.address_id, row.email, values)

    def duplicate(self, row: Row, address_id: int) -> None:
        """Another address with the email the row's address owns: an opt-out reaches it too."""
        others = list(getattr(row, "other_address_ids", None) or [])
        if address_id not in others:
            self._write(
                row, row.address_id, row.email, {"other_address_ids": [*others, address_id]}
            )

    def person_opted_out(self, email: str, carrier: int, signal: Signal) -> None:
        """The person said No on address `carrier`: its other addresses still on Yes get it."""
        self._person_opt_outs.append((email, carrier, signal))

    # Writing -----------------------------------------------------------------------------------

    async def save(self, session: AsyncSession) -> None:
        """Write everything the verbs recorded, in the caller's transaction."""
        repo = ContactRepository.from_session(session)
        for values in self._new.values():
            repo.add(Contact(connection_id=self.connection_id, **values))
        if self._new:
            await repo.flush()
        for contact_id, values in self._updates.items():
            await repo.update(contact_id, **values)
        await repo.save_ledger_rows(self.connection_id, self._plain.values())
        for refusal in self._refusals:
            await self._refuse(repo, refusal)
        if self.problems:
            await SyncRepository.from_session(session).add_problems(self.problems)
        await record_history(session, self.connection_id, self.history)
        for email, signal in self._opt_outs:
            await write_back_opt_out(session, self.provider, self.connection_id, email, signal)
        for email, carrier, signal in self._person_opt_outs:
            await write_back_person_opt_out(
                session, self.provider, self.connection_id, email, carrier, signal
            )
        await self._save_run(session, repo)

    async def _refuse(self, repo: ContactRepository, refusal: Refusal) -> None:
        found = await repo.by_address_ids(self.connection_id, [refusal.address_id])
        row = found.get(refusal.address_id)
        if row is None and refusal.email:
            row = await repo.by_email(self.connection_id, refusal.email)
        if row is not None:
            await repo.update(row.id, rejected_reason=refusal.reason)
        elif refusal.email:
            repo.add(
                Contact(
                    connection_id=self.connection_id,
                    address_id=refusal.address_id,
                    email=refusal.email,
                    tags=[],
                    rejected_reason=refusal.reason,
                )
            )
            await repo.flush()
