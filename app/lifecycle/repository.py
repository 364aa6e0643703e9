"""Every query of the connection's lifecycle: run status transitions, the held set of a run,
the tie of received events to their tenant, and each list's ledger parked across switches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update

from app.contacts.rules import Signal, carried_opt_out, takes_carried
from app.db.models import (
    Connection,
    Contact,
    HeldUnsubscribe,
    InboundEvent,
    InboundEventStatus,
    ParkedContact,
    SyncRun,
    SyncRunStatus,
)
from app.db.repository import SessionRepository, insert_ignore
from app.inbox.jobs import Stream
from app.inbox.repository import of_stream

ACTIVE = (SyncRunStatus.queued, SyncRunStatus.running)
# A parked ledger row keeps what the connector knows of the person at that list: consent,
# tags (the merge base), its member id and rejections. Not kept: the run it was last claimed
# or confirmed stale by, and the hash of the values last sent (the first run after the return
# sends everyone once, as into a new list, since the list may have changed meanwhile).
PARKED_COLUMNS = (
    "address_id",
    "provider_id",
    "tags",
    "subscribed",
    "rejected_hash",
    "rejected_reason",
    "onoffice_status",
    "onoffice_changed_at",
    "provider_status",
    "provider_changed_at",
    "other_address_ids",
    "pushed_at",
    "removal_dismissed_at",
    "onoffice_addresses",
)
PARKED_TIMES = frozenset(
    {"onoffice_changed_at", "provider_changed_at", "pushed_at", "removal_dismissed_at"}
)
PARK_CHUNK = 2000
OPEN_EVENTS = (InboundEventStatus.pending, InboundEventStatus.held)


class LifecycleRepository(SessionRepository):
    # Runs ------------------------------------------------------------------------------------

    async def run_status(self, run_id: int) -> str | None:
        value: str | None = await self.session.scalar(
            select(SyncRun.status).where(SyncRun.id == run_id)
        )
        return value

    async def end_run(self, run_id: int, **values: Any) -> bool:
        """Set the final status (and more) of a run that is still queued or running; False
        when it already ended (a cancelled run is never completed or failed afterwards)."""
        stmt = (
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.status.in_(ACTIVE))
            .values(**values)
            .returning(SyncRun.id)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none() is not None

    # The held set ------------------------------------------------------------------------------

    async def hold(self, run_id: int, rows: Sequence[dict[str, Any]]) -> int:
        """Store contacts whose unsubscribe the run held back (once per email)."""
        return await insert_ignore(
            self.session,
            HeldUnsubscribe,
            [{**r, "run_id": run_id} for r in rows],
            ("run_id", "email"),
        )

    async def held(
        self, run_id: int, *, after_id: int = 0, limit: int = 1000, status: str | None = "held"
    ) -> Sequence[HeldUnsubscribe]:
        stmt = select(HeldUnsubscribe).where(
            HeldUnsubscribe.run_id == run_id, HeldUnsubscribe.id > after_id
        )
        if status is not None:
            stmt = stmt.where(HeldUnsubscribe.status == status)
        stmt = stmt.order_by(HeldUnsubscribe.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def count_held(self, run_id: int, status: str = "held") -> int:
        stmt = select(func.count()).where(
            HeldUnsubscribe.run_id == run_id, HeldUnsubscribe.status == status
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def mark_held(self, ids: Sequence[int], status: str) -> None:
        if ids:
            await self.session.execute(
                update(HeldUnsubscribe)
                .where(HeldUnsubscribe.id.in_(list(ids)))
                .values(status=status)
                .execution_options(synchronize_session=False)
            )

    async def contacts_by_email(
        self, connection_id: int, emails: Sequence[str]
    ) -> dict[str, Contact]:
        if not emails:
            return {}
        stmt = select(Contact).where(
            Contact.connection_id == connection_id, Contact.email.in_(list(emails))
        )
        return {c.email: c for c in (await self.session.execute(stmt)).scalars()}

    # Events and the tenant ---------------------------------------------------------------------

    async def tie_events_to_tenant(self, connection_id: int, tenant_id: int) -> None:
        """The connection's events keep their customer when the connection goes."""
        await self.session.execute(
            update(InboundEvent)
            .where(InboundEvent.connection_id == connection_id)
            .values(tenant_id=tenant_id)
            .execution_options(synchronize_session=False)
        )

    async def adopt_orphans(self, tenant_id: int, connection_id: int) -> int:
        """Events of the tenant left pending or held by a disconnect join `connection_id`."""
        stmt = (
            update(InboundEvent)
            .where(
                InboundEvent.tenant_id == tenant_id,
                InboundEvent.connection_id.is_(None),
                InboundEvent.status.in_(OPEN_EVENTS),
            )
            .values(connection_id=connection_id)
            .returning(InboundEvent.id)
            .execution_options(synchronize_session=False)
        )
        return len((await self.session.execute(stmt)).scalars().all())

    async def orphan_owners(self) -> list[tuple[int, int]]:
        """(tenant, one of its connections) for tenants with events a disconnect left open
        that have a connection again (e.g. another onOffice group's)."""
        stmt = (
            select(InboundEvent.tenant_id, func.min(Connection.id))
            .join(Connection, Connection.tenant_id == InboundEvent.tenant_id)
            .where(InboundEvent.connection_id.is_(None), InboundEvent.status.in_(OPEN_EVENTS))
            .group_by(InboundEvent.tenant_id)
        )
        rows = (await self.session.execute(stmt)).all()
        return [(int(t), int(c)) for t, c in rows if t is not None and c is not None]

    async def count_pending(self, connection_id: int) -> int:
        """The connection's provider events still pending (onOffice's are pushed by their own
        drain)."""
        stmt = select(func.count()).where(
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == InboundEventStatus.pending,
            of_stream(Stream.provider),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def revive_failed(self, source: str, dedupe_key: str) -> int | None:
        """A write-back parked as failed goes back to pending (a fresh set of tries); its id,
        or None when the key is not parked as failed."""
        stmt = (
            update(InboundEvent)
            .where(
                InboundEvent.source == source,
                InboundEvent.dedupe_key == dedupe_key,
                InboundEvent.status == InboundEventStatus.failed,
            )
            .values(status=InboundEventStatus.pending, attempts=0, last_error=None)
            .returning(InboundEvent.id)
            .execution_options(synchronize_session=False)
        )
        value: int | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return value

    # Each list's ledger across switches and disconnects ---------------------------------------

    def _parked(self, connection: Connection, ledger_key: str) -> Any:
        return (
            ParkedContact.tenant_id == connection.tenant_id,
            ParkedContact.group_id == (connection.group_id or ""),
            ParkedContact.ledger_key == ledger_key,
        )

    async def _parked_chunks(self, *where: Any) -> AsyncIterator[Sequence[Row[Any]]]:
        """The parked rows matching `where` (id, email, data), PARK_CHUNK at a time."""
        after = 0
        while True:
            stmt = (
                select(ParkedContact.id, ParkedContact.email, ParkedContact.data)
                .where(*where, ParkedContact.id > after)
                .order_by(ParkedContact.id)
                .limit(PARK_CHUNK)
            )
            rows = (await self.session.execute(stmt)).all()
            if not rows:
                return
            after = rows[-1].id
            yield rows

    async def park_ledger(self, connection: Connection, ledger_key: str) -> int:
        """Keep the connection's ledger rows for the list it leaves (`ledger_key`), under its
        customer and group, replacing what was parked for that list before; how many."""
        await self.session.execute(
            delete(ParkedContact)
            .where(*self._parked(connection, ledger_key))
            .execution_options(synchronize_session=False)
        )
        columns = [Contact.id, Contact.email, *(getattr(Contact, c) for c in PARKED_COLUMNS)]
        parked, after = 0, 0
        while True:
            stmt = (
                select(*columns)
                .where(Contact.connection_id == connection.id, Contact.id > after)
                .order_by(Contact.id)
                .limit(PARK_CHUNK)
            )
            rows = (await self.session.execute(stmt)).all()
            if not rows:
                return parked
            after = rows[-1].id
            await self.session.execute(
                insert(ParkedContact),
                [
                    {
                        "tenant_id": connection.tenant_id,
                        "group_id": connection.group_id or "",
                        "ledger_key": ledger_key,
                        "email": row.email,
                        "data": {c: _to_json(c, getattr(row, c)) for c in PARKED_COLUMNS},
                    }
                    for row in rows
                ],
            )
            parked += len(rows)

    async def dismiss_parked(
        self,
        connection: Connection,
        list_id: str,
        removals: dict[str, tuple[str | None, datetime]],
        at: datetime,
    ) -> int:
        """A user dismissed removals of a list the connection has left (a held Archive-All
        burst adopted after a switch or a reconnect): the mark goes onto that list's parked
        ledger rows (`removals`: email -> provider state and its time), so a return to the list
        does not write them back; the current list's ledger is not that list's. How many rows."""
        stmt = select(ParkedContact).where(
            ParkedContact.tenant_id == connection.tenant_id,
            ParkedContact.group_id == (connection.group_id or ""),
            ParkedContact.ledger_key.like(f"{connection.provider}:%:{list_id}"),
            ParkedContact.email.in_(sorted(removals)),
        )
        marked = 0
        for row in (await self.session.execute(stmt)).scalars():
            status, changed = removals[row.email]
            row.data = {
                **row.data,
                "provider_status": status,
                "provider_changed_at": _to_json("provider_changed_at", changed),
                "subscribed": False,
                "removal_dismissed_at": _to_json("removal_dismissed_at", at),
            }
            marked += 1
        await self.session.flush()
        return marked

    async def restore_ledger(self, connection: Connection, ledger_key: str) -> int:
        """The ledger rows parked for the list the connection (re)turns to become its ledger
        again (the connection's ledger is empty: just wiped or new); how many were restored."""
        restored = 0
        async for rows in self._parked_chunks(*self._parked(connection, ledger_key)):
            await self.session.execute(
                insert(Contact),
                [
                    {"connection_id": connection.id, "email": row.email}
                    | {c: _from_json(c, row.data.get(c)) for c in PARKED_COLUMNS}
                    for row in rows
                ],
            )
            restored += len(rows)
        await self.session.execute(
            delete(ParkedContact)
            .where(*self._parked(connection, ledger_key))
            .execution_options(synchronize_session=False)
        )
        return restored

    async def carry_opt_outs(self, connection: Connection, ledger_key: str) -> int:
        """The list `ledger_key` the connection switched or reconnected to starts, for each
        person it has no ledger row for, from the person's newest opt-out or removal at the
        customer's other lists (their parked ledgers, same customer and group;
        `rules.carried_opt_out`): a row with that provider signal and the person's onOffice
        memory, not subscribed. Without it the new list's first full sync took an unchanged
        Yes for consent and subscribed a person archived at the old list (issue #17 soak, I1).
        A row the list has (restored: the connection returns) takes the signal when it is the
        newer one. How many rows were carried."""
        found: dict[str, list[tuple[Signal, datetime | None, dict[str, Any]]]] = {}
        others = (
            ParkedContact.tenant_id == connection.tenant_id,
            ParkedContact.group_id == (connection.group_id or ""),
            ParkedContact.ledger_key != ledger_key,
        )
        async for rows in self._parked_chunks(*others):
            for row in rows:
                data = row.data
                signal = Signal(
                    data.get("provider_status"),
                    _from_json("provider_changed_at", data.get("provider_changed_at")),
                )
                if signal.status is None:
                    continue
                dismissed = _from_json("removal_dismissed_at", data.get("removal_dismissed_at"))
                found.setdefault(row.email, []).append((signal, dismissed, data))
        carried: list[dict[str, Any]] = []
        for email, candidates in found.items():
            index = carried_opt_out([(signal, dismissed) for signal, dismissed, _ in candidates])
            if index is None:
                continue
            signal, _, data = candidates[index]
            carried.append(
                {
                    "connection_id": connection.id,
                    "email": email,
                    "address_id": data.get("address_id"),
                    "tags": [],
                    "subscribed": False,
                    "onoffice_status": data.get("onoffice_status"),
                    "onoffice_changed_at": _from_json(
                        "onoffice_changed_at", data.get("onoffice_changed_at")
                    ),
                    "onoffice_addresses": data.get("onoffice_addresses"),
                    "provider_status": signal.status,
                    "provider_changed_at": signal.at,
                }
            )
        inserted = 0
        for start in range(0, len(carried), PARK_CHUNK):
            chunk = {c["email"]: c for c in carried[start : start + PARK_CHUNK]}
            stmt = select(Contact).where(
                Contact.connection_id == connection.id, Contact.email.in_(sorted(chunk))
            )
            known = {c.email: c for c in (await self.session.execute(stmt)).scalars()}
            new = [c for e, c in chunk.items() if e not in known and c["address_id"] is not None]
            if new:
                await self.session.execute(insert(Contact), new)
                inserted += len(new)
            # A row the list's own ledger brought back (a return to it) takes the signal when
            # it is newer than its own; it keeps `subscribed`: the member is still subscribed
            # at this list, and the next full sync removes it there (`decide_page`).
            for email, contact in known.items():
                carry = chunk[email]
                signal = Signal(carry["provider_status"], carry["provider_changed_at"])
                own = Signal(contact.provider_status, contact.provider_changed_at)
                if takes_carried(own, signal):
                    contact.provider_status = signal.status
                    contact.provider_changed_at = signal.at
                    contact.removal_dismissed_at = None
                    inserted += 1
        await self.session.flush()
        return inserted


def _to_json(column: str, value: Any) -> Any:
    if column in PARKED_TIMES and isinstance(value, datetime):
        return value.isoformat()
    return value


def _from_json(column: str, value: Any) -> Any:
    if column in PARKED_TIMES and isinstance(value, str):
        return datetime.fromisoformat(value)
    if column == "tags" and value is None:
        return []
    return value
