"""Each list's ledger kept across switches (issue #17, family `switch`): parked when the
connection leaves a list, restored when it returns, erased with the person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.db.models import Connection, Contact, ParkedContact
from app.lifecycle.switch import park_on_disconnect, restore_on_connect, swap_ledger
from app.privacy.repository import PrivacyRepository
from app.resources import Resources
from tests.rows import add_connection

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
A, B = "mailchimp:acc:A", "brevo:acc:B"


def anna(connection_id: int, **values: object) -> Contact:
    row: dict[str, object] = {
        "connection_id": connection_id,
        "address_id": 1,
        "email": "anna@example.de",
        "tags": ["Kauf"],
        "subscribed": True,
        "synced_hash": "h",
        "last_run_id": 7,
        "provider_status": "subscribed",
        "provider_changed_at": AT,
        "onoffice_status": "yes",
        "onoffice_addresses": {"1": {"v": "yes", "at": None, "f": AT.isoformat()}},
    }
    return Contact(**(row | values))


async def contacts(resources: Resources, connection_id: int) -> list[Contact]:
    async with resources.sessionmaker() as session:
        stmt = select(Contact).where(Contact.connection_id == connection_id)
        return list((await session.execute(stmt)).scalars())


async def anna_at_a(resources: Resources) -> int:
    """A connection at list A whose ledger has anna subscribed; its id."""
    async with resources.transaction() as session:
        connection = await add_connection(session, web_id="P1", list_id="A", ledger_key=A)
        session.add(anna(connection.id))
    return connection.id


async def switch(resources: Resources, connection_id: int, key: str) -> Connection:
    """The connection's ledger swapped for the list `key` (`swap_ledger`), as a save does."""
    async with resources.transaction() as session:
        connection = await session.get(Connection, connection_id)
        assert connection is not None
        await swap_ledger(session, connection, key)
        connection.ledger_key = key
    return connection


async def test_a_switch_parks_the_ledger_and_a_return_restores_it(resources: Resources) -> None:
    connection_id = await anna_at_a(resources)
    # A -> B: A's ledger is parked, the connection's ledger is empty (B was never connected).
    await switch(resources, connection_id, B)
    assert await contacts(resources, connection_id) == []
    async with resources.transaction() as session:
        # (Before the subscribe at A: a newer opt-out would be carried back, see below.)
        earlier = AT - timedelta(days=1)
        session.add(
            anna(
                connection_id,
                provider_status="unsubscribed",
                provider_changed_at=earlier,
                subscribed=False,
            )
        )
    # B -> A: B's ledger is parked, A's comes back (without the run marks and the sent hash).
    connection = await switch(resources, connection_id, A)
    (row,) = await contacts(resources, connection_id)
    assert (row.subscribed, row.provider_status, row.tags) == (True, "subscribed", ["Kauf"])
    assert row.provider_changed_at == AT and row.onoffice_status == "yes"
    assert row.onoffice_addresses == {"1": {"v": "yes", "at": None, "f": AT.isoformat()}}
    assert (row.synced_hash, row.last_run_id) == (None, None)
    async with resources.sessionmaker() as session:
        parked = list((await session.execute(select(ParkedContact))).scalars())
    assert [(p.ledger_key, p.data["provider_status"]) for p in parked] == [(B, "unsubscribed")]
    # The person's erasure reaches the parked ledgers too.
    async with resources.transaction() as session:
        removed = await PrivacyRepository.from_session(session).forget_email(
            connection.tenant_id, [connection_id], "anna@example.de"
        )
    assert removed["parked_contact"] == 1 and removed["contact"] == 1


async def test_a_disconnect_parks_the_ledger_and_a_new_connection_to_the_list_restores_it(
    resources: Resources,
) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session, web_id="P2", list_id="A", ledger_key=A)
        session.add(anna(connection.id))
        tenant_id = connection.tenant_id
        await park_on_disconnect(session, connection)
        await session.delete(connection)
    async with resources.transaction() as session:
        again = Connection(
            tenant_id=tenant_id,
            provider="mailchimp",
            api_key_encrypted=b"x",
            webhook_token="tok2",
            ledger_key=A,
        )
        session.add(again)
        await session.flush()
        await restore_on_connect(session, again)
        again_id = again.id
    (row,) = await contacts(resources, again_id)
    assert (row.subscribed, row.provider_status, row.address_id) == (True, "subscribed", 1)


async def test_a_return_takes_a_newer_opt_out_from_the_list_left(resources: Resources) -> None:
    """A -> B -> A: anna, subscribed at A, was archived at B after that; a person new at B
    (berta) was unsubscribed there. Back at A, A's row takes B's newer removal and stays
    subscribed (the member still is, at A: the next full sync removes it there); berta gets a
    row of her own from B's opt-out (issue #17 soak, I1)."""
    connection_id = await anna_at_a(resources)
    await switch(resources, connection_id, B)
    later = AT + timedelta(hours=1)
    async with resources.transaction() as session:
        session.add(anna(connection_id, provider_status="archived", provider_changed_at=later))
        berta = anna(connection_id, email="berta@example.de", address_id=2, subscribed=False)
        berta.provider_status, berta.provider_changed_at = "unsubscribed", later
        session.add(berta)
    await switch(resources, connection_id, A)
    rows = {row.email: row for row in await contacts(resources, connection_id)}
    assert (rows["anna@example.de"].provider_status, rows["anna@example.de"].subscribed) == (
        "archived",
        True,
    )
    assert rows["anna@example.de"].provider_changed_at == later
    assert rows["anna@example.de"].tags == ["Kauf"]  # A's own row otherwise
    berta_row = rows["berta@example.de"]
    assert (berta_row.provider_status, berta_row.subscribed, berta_row.address_id) == (
        "unsubscribed",
        False,
        2,
    )
    assert berta_row.onoffice_addresses == {"1": {"v": "yes", "at": None, "f": AT.isoformat()}}
