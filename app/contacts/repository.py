"""Every query on the contact ledger (`contact`) and the provider list state (`provider_member`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Row, Table, bindparam, delete, func, select, text, update

from app.contacts.fullsync.repository import FullSyncQueries
from app.contacts.person import applier_wrote, dump_memory
from app.contacts.rows import LEDGER_COLUMNS, LedgerRow
from app.contacts.rules import REMOVED_STATES, SUBSCRIBED, YES, Signal, newest
from app.db.models import Contact, ProviderMember
from app.db.repository import SessionRepository, among, dialect_insert, lookup


class ProviderRecord(NamedTuple):
    """A provider consent signal for an email (`record_providers`), with what onOffice now
    shows, and the address to create the ledger row for when there is none."""

    email: str
    signal: Signal
    address_id: int | None = None
    onoffice: Signal | None = None


class ContactRepository(FullSyncQueries, SessionRepository):
    # Ledger rows -------------------------------------------------------------------------------

    async def by_emails(self, connection_id: int, emails: Iterable[str]) -> dict[str, Contact]:
        wanted = list(set(emails))
        if not wanted:
            return {}
        found = lookup(
            self.session,
            [Contact.id],
            Contact.email,
            wanted,
            Contact.connection_id == connection_id,
        ).subquery()
        stmt = select(Contact).join(found, Contact.id == found.c.id)
        return {c.email: c for c in (await self.session.execute(stmt)).scalars()}

    async def ledger_rows(self, connection_id: int, emails: Iterable[str]) -> dict[str, LedgerRow]:
        """The ledger rows of these emails as plain rows (see LedgerRow)."""
        wanted = list(set(emails))
        if not wanted:
            return {}
        table = cast(Table, Contact.__table__)
        stmt = lookup(
            self.session,
            [table.c[name] for name in LEDGER_COLUMNS],
            table.c.email,
            wanted,
            table.c.connection_id == connection_id,
        )
        rows = (await self.session.execute(stmt)).all()
        return {
            row.email: LedgerRow(**{**row._asdict(), "tags": list(row.tags or [])}) for row in rows
        }

    async def ensure_statistics(self) -> None:
        """ANALYZE the ledger when PostgreSQL has no statistics for it yet (a fresh database, a
        first sync). Without them, looking up 500 emails was planned through the
        (connection_id, address_id) index, every row of the connection compared with every
        email: O(contacts × page) per page, the run's bottleneck at 100,000 addresses. One
        ANALYZE (milliseconds) is enough: the planner scales the row count with the table's
        size, and autovacuum keeps it current from then on."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        missing = await self.session.scalar(
            text(
                "SELECT s.last_analyze IS NULL AND s.last_autoanalyze IS NULL AND s.n_live_tup > 0"
                " FROM pg_stat_user_tables s WHERE s.relid = 'contact'::regclass"
            )
        )
        if missing:
            await self.session.execute(text("ANALYZE contact"))

    async def save_ledger_rows(self, connection_id: int, rows: Iterable[LedgerRow]) -> None:
        """Insert the new rows and write the changed columns of the others: one INSERT for the
        new rows, one UPDATE per set of rows with the same changes (e.g. every row claimed by
        the run), one executemany per remaining set of changed columns."""
        table = cast(Table, Contact.__table__)
        new: list[dict[str, Any]] = []
        groups: dict[tuple[str, ...], list[LedgerRow]] = {}
        for row in rows:
            if row.id is None:
                values = {name: getattr(row, name) for name in LEDGER_COLUMNS if name != "id"}
                new.append(values | {"connection_id": connection_id})
            elif row.changes:
                groups.setdefault(tuple(sorted(row.changes)), []).append(row)
        if new:
            await self.session.execute(table.insert(), new)
        for names, members in groups.items():
            first = members[0].changes
            if all(m.changes == first for m in members):
                ids = [m.id for m in members]
                await self.session.execute(
                    table.update().where(among(self.session, table.c.id, ids)).values(**first)
                )
                continue
            stmt = (
                table.update()
                .where(table.c.id == bindparam("row_id"))
                .values({name: bindparam(f"v_{name}") for name in names})
            )
            await self.session.execute(
                stmt,
                [{"row_id": m.id} | {f"v_{n}": m.changes[n] for n in names} for m in members],
            )

    async def by_email(self, connection_id: int, email: str) -> Contact | None:
        return (await self.by_emails(connection_id, [email])).get(email)

    async def by_address_ids(
        self, connection_id: int, address_ids: Sequence[int]
    ) -> dict[int, Contact]:
        if not address_ids:
            return {}
        stmt = select(Contact).where(
            Contact.connection_id == connection_id, Contact.address_id.in_(list(address_ids))
        )
        return {c.address_id: c for c in (await self.session.execute(stmt)).scalars()}

    async def get(self, contact_id: int) -> Contact | None:
        return await self.session.get(Contact, contact_id)

    def add(self, contact: Contact) -> None:
        self.session.add(contact)

    async def flush(self) -> None:
        await self.session.flush()

    async def forget_synced(self, connection_id: int, emails: Sequence[str]) -> None:
        """The provider may lack part of these contacts' values (e.g. a tag): the next run
        sends them again."""
        if emails:
            await self.session.execute(
                update(Contact)
                .where(Contact.connection_id == connection_id, Contact.email.in_(list(emails)))
                .values(synced_hash=None)
                .execution_options(synchronize_session=False)
            )

    async def update(self, contact_id: int, **values: Any) -> None:
        await self.session.execute(
            update(Contact)
            .where(Contact.id == contact_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def record_provider(
        self,
        connection_id: int,
        email: str,
        signal: Signal,
        *,
        address_id: int | None = None,
        onoffice: Signal | None = None,
    ) -> None:
        """Store a provider consent signal (and optionally onOffice's) for an email; creates
        the ledger row when an address is known and none exists yet."""
        await self.record_providers(
            connection_id, [ProviderRecord(email, signal, address_id, onoffice)]
        )

    async def record_providers(self, connection_id: int, records: Sequence[ProviderRecord]) -> None:
        """`record_provider` for many emails in a few statements (a drained batch): one read of
        their rows, one executemany UPDATE per set of columns, one INSERT of the new rows; of
        two records of one email the later wins."""
        latest = {record.email: record for record in records}
        if not latest:
            return
        existing = await self.by_emails(connection_id, list(latest))
        table = cast(Table, Contact.__table__)
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        new: list[dict[str, Any]] = []
        for email, record in latest.items():
            values: dict[str, Any] = {
                "provider_status": record.signal.status,
                "provider_changed_at": record.signal.at,
                "subscribed": record.signal.status == SUBSCRIBED,
                "removal_dismissed_at": None,  # a newer provider state replaces a dismissal
            }
            row = existing.get(email)
            if record.onoffice is not None:
                values |= {
                    "onoffice_status": record.onoffice.status,
                    "onoffice_changed_at": record.onoffice.at,
                }
                if row is not None and row.onoffice_addresses:
                    # The person's memory learns the write with the signal (see applier_wrote).
                    memory = applier_wrote(
                        row.onoffice_addresses,
                        owner=row.address_id,
                        before=Signal(row.onoffice_status, row.onoffice_changed_at),
                        written=record.onoffice,
                    )
                    values["onoffice_addresses"] = dump_memory(memory)
            if row is not None:
                bound = {"row_id": row.id} | {f"v_{k}": v for k, v in values.items()}
                updates.setdefault(tuple(values), []).append(bound)
            elif record.address_id is not None:
                new.append(
                    values
                    | {
                        "connection_id": connection_id,
                        "address_id": record.address_id,
                        "email": email,
                        "tags": [],
                    }
                )
        for names, rows in updates.items():
            stmt = (
                table.update()
                .where(table.c.id == bindparam("row_id"))
                .values({name: bindparam(f"v_{name}") for name in names})
            )
            await self.session.execute(stmt, rows)
        if new:
            await self.session.execute(table.insert(), new)

    async def dismiss_removals(
        self, connection_id: int, signals: dict[str, Signal], at: datetime
    ) -> None:
        """A user dismissed these members' removals (a held Archive-All burst): the ledger keeps
        the removal with the mark, so no later event, sync or reconciliation writes it back."""
        if not signals:
            return
        table = cast(Table, Contact.__table__)
        stmt = (
            table.update()
            .where(table.c.connection_id == connection_id, table.c.email == bindparam("v_email"))
            .values(
                provider_status=bindparam("v_status"),
                provider_changed_at=bindparam("v_at"),
                subscribed=False,
                removal_dismissed_at=at,
            )
        )
        rows = [
            {"v_email": email, "v_status": signal.status, "v_at": signal.at}
            for email, signal in signals.items()
        ]
        await self.session.execute(stmt, rows)

    async def archived(self, connection_id: int, limit: int) -> Sequence[Contact]:
        """Contacts archived or deleted at the provider whose onOffice address said Yes when
        the connector last saw it: the candidates for a restore."""
        stmt = (
            select(Contact)
            .where(
                Contact.connection_id == connection_id,
                Contact.provider_status.in_(sorted(REMOVED_STATES)),
                Contact.onoffice_status == YES,
            )
            .order_by(Contact.email)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def owner_of(self, connection_id: int, email: str) -> int | None:
        return await self.session.scalar(
            select(Contact.address_id).where(
                Contact.connection_id == connection_id, Contact.email == email
            )
        )

    async def address_ids_for(self, connection_id: int, emails: Sequence[str]) -> list[int]:
        stmt = select(Contact.address_id).where(
            Contact.connection_id == connection_id, Contact.email.in_(list(emails))
        )
        return sorted({int(i) for i in (await self.session.execute(stmt)).scalars()})

    async def count_synced(self, connection_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(Contact)
            .where(Contact.connection_id == connection_id, Contact.synced_hash.is_not(None))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def count_subscribed(self, connection_id: int) -> int:
        """Contacts the ledger expects to be subscribed at the provider."""
        stmt = (
            select(func.count())
            .select_from(Contact)
            .where(Contact.connection_id == connection_id, Contact.subscribed.is_(True))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def refused(self, connection_id: int, limit: int = 100) -> Sequence[Contact]:
        """Contacts whose last change the provider refused (incremental pushes included)."""
        stmt = (
            select(Contact)
            .where(Contact.connection_id == connection_id, Contact.rejected_reason.is_not(None))
            .order_by(Contact.updated_at.desc())
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def count_refused(self, connection_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(Contact)
            .where(Contact.connection_id == connection_id, Contact.rejected_reason.is_not(None))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def wipe(self, connection_id: int) -> None:
        """Forget the ledger and list state (the connection now points at another list)."""
        await self.session.execute(delete(Contact).where(Contact.connection_id == connection_id))
        await self.session.execute(
            delete(ProviderMember).where(ProviderMember.connection_id == connection_id)
        )

    # Provider list state -----------------------------------------------------------------------

    async def store_members(
        self, connection_id: int, run_id: int, members: Sequence[dict[str, Any]]
    ) -> None:
        """Upsert one page of the provider's list state (email, status, changed_at, tags)."""
        if not members:
            return
        rows = list(
            {
                m["email"]: {**m, "connection_id": connection_id, "run_id": run_id} for m in members
            }.values()
        )
        stmt = dialect_insert(self.session)(ProviderMember).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["connection_id", "email"],
            set_={
                name: getattr(stmt.excluded, name)
                for name in ("status", "changed_at", "tags", "provider_id", "run_id")
            },
        )
        await self.session.execute(stmt)

    async def count_members(self, connection_id: int) -> int:
        """Provider members stored by the connection's list reads (its last known size)."""
        stmt = select(func.count()).where(ProviderMember.connection_id == connection_id)
        return int(await self.session.scalar(stmt) or 0)

    async def member_states(
        self, connection_id: int, run_id: int, emails: Iterable[str]
    ) -> dict[str, Any]:
        """This run's read of the provider list for these emails: (email, status, changed_at)."""
        wanted = list(set(emails))
        if not wanted:
            return {}
        table = cast(Table, ProviderMember.__table__)
        stmt = lookup(
            self.session,
            [table.c.email, table.c.status, table.c.changed_at],
            table.c.email,
            wanted,
            table.c.connection_id == connection_id,
            table.c.run_id == run_id,
        )
        return {row.email: row for row in (await self.session.execute(stmt)).all()}

    async def member_page(
        self, connection_id: int, run_id: int, after_id: int, limit: int
    ) -> Sequence[Any]:
        """One page of this run's list state in id order: rows of (id, email, tags)."""
        stmt = (
            select(ProviderMember.id, ProviderMember.email, ProviderMember.tags)
            .where(
                ProviderMember.connection_id == connection_id,
                ProviderMember.run_id == run_id,
                ProviderMember.id > after_id,
            )
            .order_by(ProviderMember.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).all()


def provider_signal(
    contact: Contact | LedgerRow | None, member: ProviderMember | Row[Any] | None
) -> Signal:
    """The newest provider signal from the ledger and this run's read of the list."""
    ledger = (
        Signal(contact.provider_status, contact.provider_changed_at) if contact else Signal(None)
    )
    read = Signal(member.status, member.changed_at) if member else Signal(None)
    return newest(ledger, read)


def onoffice_signal(contact: Contact | None) -> Signal:
    if contact is None:
        return Signal(None)
    return Signal(contact.onoffice_status, contact.onoffice_changed_at)
