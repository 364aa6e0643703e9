"""Every query on received events (`inbound_event`)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.base import aware
from app.db.models import (
    Connection,
    InboundEvent,
    InboundEventStatus,
)
from app.db.repository import SessionRepository, dialect_insert
from app.inbox.jobs import ONOFFICE_SOURCE, Stream
from providers.base import normalise_email

# Rows per INSERT: far below SQLite's bound-parameter limit, few round trips for a batch of 500.
INSERT_CHUNK = 100
# The dedupe key column's length.
DEDUPE_KEY_MAX = 255
# Removals the periodic reconciliation found (app/reconcile/): for every provider a burst
# candidate, like Mailchimp's removal webhooks (many at once are held for a user).
RECONCILE_REMOVAL = "reconcile-removal:"


@dataclass(frozen=True)
class IngestCheck:
    """The connection state a delivery was checked against (a cached lookup): it is stored
    only while the connection still has this provider, token hash, secret hash and list."""

    connection_id: int
    provider: str
    token_hash: str
    secret_hash: str | None
    list_id: str | None


@dataclass(frozen=True)
class IngestRow:
    """One received event as ingest stores it; `dedupe_key` at most DEDUPE_KEY_MAX long."""

    source: str
    dedupe_key: str
    payload: dict[str, Any]
    connection_id: int
    received_at: datetime


# Ingest's group write on PostgreSQL: checks and rows as arrays, one statement.
_INGEST_GROUP = text(
    """
WITH matched AS (
  SELECT k.n FROM unnest(CAST(:k_ids AS bigint[]), CAST(:k_providers AS text[]),
                         CAST(:k_tokens AS text[]), CAST(:k_secrets AS text[]),
                         CAST(:k_lists AS text[]))
    WITH ORDINALITY AS k(id, provider, token, secret, list_id, n)
  JOIN connection c ON c.id = k.id AND c.provider = k.provider AND c.webhook_token = k.token
    AND c.webhook_secret_hash IS NOT DISTINCT FROM k.secret
    AND c.list_id IS NOT DISTINCT FROM k.list_id
  FOR KEY SHARE OF c
), inserted AS (
  INSERT INTO inbound_event
    (source, dedupe_key, payload, connection_id, status, attempts, received_at)
  SELECT r.source, r.dedupe_key, CAST(r.payload AS json), r.connection_id, 'pending', 0,
         r.received_at
  FROM unnest(CAST(:sources AS text[]), CAST(:keys AS text[]), CAST(:payloads AS text[]),
              CAST(:cids AS bigint[]), CAST(:ats AS timestamptz[]), CAST(:checks AS bigint[]))
    WITH ORDINALITY AS r(source, dedupe_key, payload, connection_id, received_at, k, n)
  WHERE r.k IN (SELECT n FROM matched)
  ORDER BY r.n
  ON CONFLICT (source, dedupe_key) DO NOTHING
  RETURNING source, dedupe_key
)
SELECT NULL AS k, source, dedupe_key FROM inserted
UNION ALL SELECT n, NULL, NULL FROM matched
"""
)


def of_stream(stream: Stream) -> Any:
    """The events a stream's drain takes: onOffice's, or every provider's."""
    if stream == Stream.onoffice:
        return InboundEvent.source == ONOFFICE_SOURCE
    return InboundEvent.source != ONOFFICE_SOURCE


# Provider events that take a contact off the list (the full sync and the incremental push
# hold such a contact back until the event is applied).
OPT_OUT_EVENT_TYPES = ("unsubscribe", "deleted", "cleaned")
EMAILS_IN_SQL = 1000  # `pending_news(prefilter=True)` for at most this many emails: in the database


class InboundEventRepository(SessionRepository):
    async def pending_opt_outs(
        self, connection_id: int, emails: Iterable[str] | None = None, limit: int = 100_000
    ) -> frozenset[str]:
        """Emails with a received opt-out event that is not applied to onOffice yet."""
        news = await self.pending_news(connection_id, emails, limit)
        return frozenset(e for e, kind in news.items() if not kind.isdisjoint(OPT_OUT_EVENT_TYPES))

    async def pending_news(
        self,
        connection_id: int,
        emails: Iterable[str] | None = None,
        limit: int = 100_000,
        *,
        prefilter: bool = False,
    ) -> dict[str, set[str]]:
        """Email -> the kinds of the provider events received for it and not applied to
        onOffice yet (pending or held)."""
        stmt = (
            select(InboundEvent.payload)
            .where(
                InboundEvent.connection_id == connection_id,
                InboundEvent.status.in_((InboundEventStatus.pending, InboundEventStatus.held)),
            )
            .limit(limit)
        )
        wanted = None if emails is None else set(emails)
        if prefilter and wanted is not None and len(wanted) <= EMAILS_IN_SQL:
            # Only those emails' events (the database compares, no payload of another email
            # is decoded); the exact comparison follows below. The database's trim and lower
            # are not Python's (other white space, a locale's case rules): a caller for whom
            # a missed event is a consent matter (`pending_opt_outs`) does not prefilter.
            email_of = func.lower(func.trim(InboundEvent.payload["email"].as_string()))
            stmt = stmt.where(email_of.in_(sorted(wanted)))
        found: dict[str, set[str]] = {}
        for payload in (await self.session.execute(stmt)).scalars():
            kind = payload.get("type")
            email = normalise_email(str(payload.get("email", "")))
            if kind and (wanted is None or email in wanted):
                found.setdefault(email, set()).add(str(kind))
        return found

    async def create_on_conflict_do_nothing(
        self,
        *,
        source: str,
        dedupe_key: str,
        payload: dict[str, Any],
        received_at: datetime,
        connection_id: int | None = None,
    ) -> int | None:
        """Store the event; its id, or None when (source, dedupe_key) was stored before."""
        ids = await self.create_many_on_conflict_do_nothing(
            source=source,
            events=[(dedupe_key, payload)],
            received_at=received_at,
            connection_id=connection_id,
        )
        return ids[0] if ids else None

    async def create_many_on_conflict_do_nothing(
        self,
        *,
        source: str,
        events: Sequence[tuple[str, dict[str, Any]]],
        received_at: datetime,
        connection_id: int | None = None,
    ) -> list[int]:
        """Store (dedupe_key, payload) pairs in a few multi-row INSERTs; the ids of the new
        ones in arrival order (keys stored before are skipped)."""
        return await _insert_events(
            self.session,
            source=source,
            events=events,
            received_at=received_at,
            connection_id=connection_id,
        )

    @staticmethod
    async def ingest_group(
        conn: AsyncConnection, deliveries: Sequence[tuple[IngestCheck, Sequence[IngestRow]]]
    ) -> tuple[list[bool], set[tuple[str, str]]]:
        """Ingest's write of a group of deliveries, on a plain autocommit connection (no ORM
        session, whose bookkeeping cost more CPU than the statement): the rows of each
        delivery whose check still matches its connection are inserted, deduplicated on
        (source, dedupe_key). Returns per delivery whether its check matched, and the
        (source, dedupe_key) pairs that were new. PostgreSQL: one statement (one round trip,
        atomic), the matched connections locked against deletion (FOR KEY SHARE) while it
        runs; saving a connection does not wait for it."""
        index: dict[IngestCheck, int] = {}
        rows: list[tuple[int, IngestRow]] = []
        for check, delivery_rows in deliveries:
            # Every delivery's check is indexed, also one without rows (nothing to store).
            position = index.setdefault(check, len(index))
            rows.extend((position, row) for row in delivery_rows)
        write = _ingest_postgresql if conn.dialect.name == "postgresql" else _ingest_generic
        matched, new = await write(conn, list(index), rows)
        return [index[check] in matched for check, _ in deliveries], new

    async def set_status(self, event_ids: Sequence[int], status: str, **values: Any) -> None:
        if event_ids:
            await self.session.execute(
                update(InboundEvent)
                .where(InboundEvent.id.in_(list(event_ids)))
                .values(status=status, **values)
                .execution_options(synchronize_session=False)
            )

    # Applying ------------------------------------------------------------------------------

    async def pending(
        self,
        *,
        limit: int,
        connection_id: int,
        stream: Stream = Stream.provider,
        besides: Collection[int] = (),
    ) -> Sequence[InboundEvent]:
        """A connection's pending events of one stream in arrival order, other than `besides`
        (a drained batch whose outcomes are still being committed)."""
        stmt = select(InboundEvent).where(
            InboundEvent.status == InboundEventStatus.pending,
            InboundEvent.connection_id == connection_id,
            of_stream(stream),
        )
        if besides:
            stmt = stmt.where(InboundEvent.id.not_in(list(besides)))
        stmt = stmt.order_by(InboundEvent.id).limit(limit)
        return (await self.session.execute(stmt)).scalars().all()

    async def connections_with_pending(self, stream: Stream = Stream.provider) -> list[int]:
        stmt = (
            select(InboundEvent.connection_id)
            .where(
                InboundEvent.status == InboundEventStatus.pending,
                InboundEvent.connection_id.is_not(None),
                of_stream(stream),
            )
            .distinct()
        )
        return [int(i) for i in (await self.session.execute(stmt)).scalars() if i is not None]

    async def id_of(self, source: str, dedupe_key: str) -> int | None:
        """The id of the event stored under (source, dedupe_key)."""
        stmt = select(InboundEvent.id).where(
            InboundEvent.source == source, InboundEvent.dedupe_key == dedupe_key
        )
        value: int | None = await self.session.scalar(stmt)
        return value

    async def set_payload(self, event_id: int, payload: dict[str, Any]) -> None:
        await self.session.execute(
            update(InboundEvent).where(InboundEvent.id == event_id).values(payload=payload)
        )

    async def update_events(
        self, event_ids: Sequence[int], *, tried: bool = False, **values: Any
    ) -> None:
        """Set columns of events; `tried` counts one more attempt."""
        if not event_ids:
            return
        if tried:
            values["attempts"] = InboundEvent.attempts + 1
        await self.session.execute(
            update(InboundEvent)
            .where(InboundEvent.id.in_(list(event_ids)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def last_received_at(self, connection_id: int, source: str) -> datetime | None:
        """When the connection last received an event from `source` (kept events only: the
        retention purge deletes applied ones after RETENTION_EVENT_DAYS)."""
        stmt = select(func.max(InboundEvent.received_at)).where(
            InboundEvent.connection_id == connection_id, InboundEvent.source == source
        )
        return aware(await self.session.scalar(stmt))

    async def counts_by_status(
        self, connection_id: int, stream: Stream = Stream.provider
    ) -> dict[str, int]:
        stmt = (
            select(InboundEvent.status, func.count())
            .where(InboundEvent.connection_id == connection_id, of_stream(stream))
            .group_by(InboundEvent.status)
        )
        return {str(k): int(n) for k, n in (await self.session.execute(stmt)).all()}

    async def unconfirmed(self, connection_id: int, limit: int) -> list[InboundEvent]:
        """The newest events the provider's state did not confirm (app/contacts/confirm.py)."""
        stmt = (
            select(InboundEvent)
            .where(
                InboundEvent.connection_id == connection_id,
                InboundEvent.status == InboundEventStatus.unconfirmed,
            )
            .order_by(InboundEvent.id.desc())
            .limit(limit)
        )
        return list((await self.session.scalars(stmt)).all())

    async def pending_besides(
        self, connection_id: int, event_ids: Iterable[int], stream: Stream = Stream.provider
    ) -> bool:
        """Whether the connection has a pending event of the stream other than `event_ids`
        (whatever its id: ids are taken before commit, so a later commit may carry a smaller
        id)."""
        stmt = select(InboundEvent.id).where(
            InboundEvent.connection_id == connection_id,
            InboundEvent.status == InboundEventStatus.pending,
            of_stream(stream),
        )
        ids = list(event_ids)
        if ids:
            stmt = stmt.where(InboundEvent.id.not_in(ids))
        return (await self.session.scalar(stmt.limit(1))) is not None


async def _insert_events(
    db: AsyncSession | AsyncConnection,
    *,
    source: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    received_at: datetime,
    connection_id: int | None,
) -> list[int]:
    """Multi-row INSERTs of new events (known (source, dedupe_key) pairs skipped); the new ids
    in arrival order. `db` is an ORM session or a plain connection."""
    insert = dialect_insert(db)
    ids: list[int] = []
    for start in range(0, len(events), INSERT_CHUNK):
        rows = [
            {
                "source": source,
                "dedupe_key": key[:DEDUPE_KEY_MAX],
                "payload": payload,
                "connection_id": connection_id,
                "status": InboundEventStatus.pending,
                "attempts": 0,
                "received_at": received_at,
            }
            for key, payload in events[start : start + INSERT_CHUNK]
        ]
        stmt = (
            insert(InboundEvent)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
            .returning(InboundEvent.id)
        )
        ids.extend((await db.execute(stmt)).scalars())
    return sorted(ids)


async def _ingest_postgresql(
    conn: AsyncConnection, checks: list[IngestCheck], rows: list[tuple[int, IngestRow]]
) -> tuple[set[int], set[tuple[str, str]]]:
    result = await conn.execute(
        _INGEST_GROUP,
        {
            "k_ids": [c.connection_id for c in checks],
            "k_providers": [c.provider for c in checks],
            "k_tokens": [c.token_hash for c in checks],
            "k_secrets": [c.secret_hash for c in checks],
            "k_lists": [c.list_id for c in checks],
            "sources": [r.source for _, r in rows],
            "keys": [r.dedupe_key for _, r in rows],
            "payloads": [json.dumps(r.payload) for _, r in rows],
            "cids": [r.connection_id for _, r in rows],
            "ats": [r.received_at for _, r in rows],
            "checks": [k + 1 for k, _ in rows],  # ORDINALITY counts from 1
        },
    )
    matched: set[int] = set()
    new: set[tuple[str, str]] = set()
    for check, source, key in result.all():
        if check is None:
            new.add((str(source), str(key)))
        else:
            matched.add(int(check) - 1)
    return matched, new


async def _ingest_generic(
    conn: AsyncConnection, checks: list[IngestCheck], rows: list[tuple[int, IngestRow]]
) -> tuple[set[int], set[tuple[str, str]]]:
    """SQLite (one writer at a time anyway): the check, then one INSERT (compiled once, sent
    as multi-row statements by SQLAlchemy's insertmanyvalues)."""
    ids = sorted({c.connection_id for c in checks})
    stmt = select(
        Connection.id,
        Connection.provider,
        Connection.webhook_token,
        Connection.webhook_secret_hash,
        Connection.list_id,
    ).where(Connection.id.in_(ids))
    current = {row[0]: IngestCheck(*row) for row in (await conn.execute(stmt)).all()}
    matched = {i for i, c in enumerate(checks) if current.get(c.connection_id) == c}
    params = [
        {
            "source": r.source,
            "dedupe_key": r.dedupe_key,
            "payload": r.payload,
            "connection_id": r.connection_id,
            "status": InboundEventStatus.pending,
            "attempts": 0,
            "received_at": r.received_at,
        }
        for k, r in rows
        if k in matched
    ]
    if not params:
        return matched, set()
    insert = (
        dialect_insert(conn)(InboundEvent)
        .on_conflict_do_nothing(index_elements=["source", "dedupe_key"])
        .returning(InboundEvent.source, InboundEvent.dedupe_key)
    )
    result = await conn.execute(insert, params)
    return matched, {(str(source), str(key)) for source, key in result.all()}
