"""The inbox's parts called directly on the test database, jobs in-process (embedded mode: the
drain flags live in the process): storing an event once, stamping it handled, two streams on
one connection, and the onOffice stream's drain as a connection's owner."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.connections.repository import OnOfficeAccessRepository
from app.db.base import utcnow
from app.db.models import Connection, InboundEvent
from app.inbox import owner
from app.inbox.events import handling, store
from app.inbox.jobs import ONOFFICE_SOURCE, Stream
from app.inbox.repository import InboundEventRepository
from app.incremental.drain import run_drain
from app.resources import Resources
from tests.rows import add_connection


async def saved(
    resources: Resources, connection: Connection, address_id: int, signature: str = "sig"
) -> int | None:
    async with resources.transaction() as session:
        stored = await store(
            session,
            source=ONOFFICE_SOURCE,
            dedupe_key=f"c{connection.id}:{signature}-{address_id}",
            payload={"tenant_id": connection.tenant_id, "address_id": address_id},
            connection_id=connection.id,
        )
    return stored.id


async def events(resources: Resources) -> dict[int, Any]:
    async with resources.sessionmaker() as session:
        rows = (await session.scalars(select(InboundEvent).order_by(InboundEvent.id))).all()
    return {r.id: (r.source, r.status, r.attempts) for r in rows}


async def test_an_event_is_stored_once_and_found_again(resources: Resources) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session)
    first = await saved(resources, connection, 4711)
    async with resources.transaction() as session:
        again = await store(
            session,
            source=ONOFFICE_SOURCE,
            dedupe_key=f"c{connection.id}:sig-4711",
            payload={"other": True},
            connection_id=connection.id,
        )
    assert first is not None and again.id == first and not again.new
    assert list((await events(resources)).values()) == [(ONOFFICE_SOURCE, "pending", 0)]


async def test_handling_stamps_applied_pending_or_failed(resources: Resources) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session)
    ids = [await saved(resources, connection, i) for i in (1, 2, 3)]
    async with resources.sessionmaker() as session:
        rows = list(
            await InboundEventRepository.from_session(session).pending(
                connection_id=connection.id, limit=10, stream=Stream.onoffice
            )
        )
    async with handling(resources, rows[:1], max_attempts=2):
        pass
    with pytest.raises(RuntimeError):
        async with handling(resources, rows[1:2], max_attempts=2):
            raise RuntimeError("onOffice away")
    for attempt in range(2):  # refused twice: parked as failed at the second try
        row = rows[2]
        row.attempts = attempt
        async with handling(resources, [row], max_attempts=2) as handled:
            handled.refused("refused")
        if attempt == 0:
            assert (await events(resources))[ids[2]] == (ONOFFICE_SOURCE, "pending", 1)
    found = await events(resources)
    assert found[ids[0]] == (ONOFFICE_SOURCE, "applied", 1)
    assert found[ids[1]] == (ONOFFICE_SOURCE, "pending", 1)
    assert found[ids[2]] == (ONOFFICE_SOURCE, "failed", 2)


async def test_the_two_streams_of_a_connection_are_apart(resources: Resources) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session)
        provider_id = await InboundEventRepository.from_session(
            session
        ).create_on_conflict_do_nothing(
            source="mailchimp",
            dedupe_key="c1:unsubscribe",
            payload={"type": "unsubscribe", "email": "anna@example.de"},
            received_at=utcnow(),
            connection_id=connection.id,
        )
    onoffice_id = await saved(resources, connection, 4711)
    async with resources.sessionmaker() as session:
        repo = InboundEventRepository.from_session(session)
        provider = await repo.pending(connection_id=connection.id, limit=10)
        onoffice = await repo.pending(connection_id=connection.id, limit=10, stream=Stream.onoffice)
        assert [e.id for e in provider] == [provider_id]
        assert [e.id for e in onoffice] == [onoffice_id]
        assert await repo.connections_with_pending(Stream.onoffice) == [connection.id]
        assert not await repo.pending_besides(connection.id, [provider_id])
        assert await repo.counts_by_status(connection.id) == {"pending": 1}
    # One owner per stream: the webhook drain's flag does not hold the onOffice one back.
    assert await owner.claim(resources, connection.id) is not None
    assert await owner.claim(resources, connection.id) is None
    assert await owner.claim(resources, connection.id, stream=Stream.onoffice) is not None


async def test_the_onoffice_drain_runs_as_the_connections_only_owner(
    resources: Resources,
) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session)
        # onOffice refuses the access: the drain marks the events handled without a call
        # (the connection's poll brings the changes once the access works).
        await OnOfficeAccessRepository.from_session(session).record_refused(
            connection.id, 42, "refused", utcnow()
        )
    first = await saved(resources, connection, 1)
    other = await owner.claim(resources, connection.id, stream=Stream.onoffice)
    assert other is not None
    await run_drain(resources, connection.id, None)  # a kick while another drain owns it
    assert (await events(resources))[first or 0][1] == "pending"
    await owner.release(resources, connection.id, other, stream=Stream.onoffice)
    second = await saved(resources, connection, 1, "again")  # the same address saved again
    assert second != first
    await run_drain(resources, connection.id, None)
    found = await events(resources)
    assert [found[first or 0][1], found[second or 0][1]] == ["applied", "applied"]
    # The owner gave the flag up when nothing was left.
    assert await owner.claim(resources, connection.id, stream=Stream.onoffice) is not None
