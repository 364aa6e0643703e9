"""The ledger writer's verbs only a full sync records (part of `LedgerWriter`, like
`FullSyncQueries` is part of `ContactRepository`): a page's decision, the problems of members
whose tags could not be set, the tag merge's result, contacts to send again, the run's copy of
the provider's list state, the contacts its re-read confirmed gone (or back) and those
unsubscribed because they left onOffice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.ledger import push_person_later
from app.contacts.repository import ContactRepository
from app.contacts.rows import LedgerRow
from app.contacts.writer_base import LedgerBase, Row
from app.db.models import ProblemKind
from app.history.writer import ONOFFICE, PROVIDER, Entry, action_entry, signal_entry
from app.i18n import reasons
from providers.base import RejectReason


class RunVerbs(LedgerBase):
    def decided(
        self,
        rows: Iterable[LedgerRow],
        entries: Iterable[Entry] = (),
        problems: Iterable[dict[str, Any]] = (),
    ) -> None:
        """A page's decision (`app.syncs.decide`): its rows, history and problems."""
        for row in rows:
            self._plain[id(row)] = row
        self.history.extend(entries)
        self.problems.extend(problems)

    def withdrawn(self, address_id: int, email: str, label: str) -> None:
        """Opted out at the provider while the run ran: not sent, a problem row."""
        reason = f"opted out at {label} while the sync ran; not sent"
        code, params = reasons.OPTED_OUT_DURING_SYNC, {"provider": label}
        self.problems.append(
            self._problem(address_id, email, ProblemKind.opted_out, reason, code, params)
        )

    def tags_refused(
        self, row: Row | None, address_id: int, email: str, detail: str, provider: str
    ) -> None:
        """Saved, but its tags could not be set: a problem row (the provider's words as the
        labelled original); the next run sends it again."""
        self._rejection(address_id, email, RejectReason.tags, detail, provider)
        if row is not None:
            self._write(row, address_id, email, {"synced_hash": None})

    def tags_merged(self, row: Row, tags: Sequence[str]) -> None:
        """The three-way tag merge's result, written to both sides: the new ancestor."""
        self._write(row, row.address_id, row.email, {"tags": list(tags)})

    def unsent(self, emails: Sequence[str]) -> None:
        """Sent without values the provider still lacks (a tag): the next run sends them."""
        self._unsent.extend(emails)

    def listed(self, members: Sequence[dict[str, Any]]) -> None:
        """A page of the run's read of the provider's list (email, status, time, tags, id)."""
        self._listed.extend(members)

    def member_tags(self, tags: Mapping[str, list[str]]) -> None:
        """The tags the run itself left on members of its copy of the list state."""
        self._member_tags.update(tags)

    def stale(self, contact_ids: Sequence[int], *, confirmed: bool = True) -> None:
        """The run's re-read by id confirmed these contacts left onOffice (`confirmed`=False:
        a re-read right before the unsubscribe found them on Yes again: the mark goes)."""
        self._stale.update(dict.fromkeys(contact_ids, confirmed))

    def left_onoffice(self, row: Row, *, note: str | None = None) -> None:
        """Unsubscribed because the email left onOffice (a stale contact)."""
        at, ref = self.now, self.run_id
        self._entry(signal_entry(row.email, ONOFFICE, "absent", self.source, ref, at=at))
        self._entry(action_entry(row.email, PROVIDER, "unsubscribe", self.source, ref, note=note))
        values = {"subscribed": False, "provider_status": "unsubscribed", "provider_changed_at": at}
        values |= {"onoffice_status": "absent", "onoffice_changed_at": at}
        self._write(row, row.address_id, row.email, values)

    def push_later(self, tenant_id: int, address_id: int, key: str) -> None:
        """The incremental push carries out this person's plan (an "address saved" event)."""
        self._push_later.append((tenant_id, address_id, key))

    async def _save_run(self, session: AsyncSession, repo: ContactRepository) -> None:
        for confirmed in (True, False):
            ids = [i for i, marked in self._stale.items() if marked is confirmed]
            await repo.mark_stale(ids, self.run_id if confirmed else None)
        if self._unsent:
            await repo.forget_synced(self.connection_id, self._unsent)
        if self._listed:
            assert self.run_id is not None
            await repo.store_members(self.connection_id, self.run_id, self._listed)
        if self._member_tags:
            assert self.run_id is not None
            await repo.set_member_tags(self.connection_id, self.run_id, self._member_tags)
        for tenant_id, address_id, key in self._push_later:
            await push_person_later(session, tenant_id, self.connection_id, address_id, key)
