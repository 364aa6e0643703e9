"""The webhook applier's write is stored in the person's memory on the ledger row (issue #17,
the planner model's case): the ledger's per-email onOffice signal alone cannot tell the
applier's write from the planner's own signal when both are the same value at the same time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.contacts.person import AddressMemory, Seen, dump_memory, load_memory, plan_person
from app.contacts.repository import ContactRepository
from app.contacts.rules import Signal
from app.db.models import Contact
from app.resources import Resources
from tests.rows import add_connection

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_the_applier_stores_its_write_in_the_memory_even_with_the_planners_signal(
    resources: Resources,
) -> None:
    # The planner saw address 1 change to Yes at 600 (a fresh consent after the No of 100 on
    # both) and stored the person's signal "yes at 600" with the memory.
    planned = {1: AddressMemory("yes", at(600), at(0)), 2: AddressMemory("no", at(100), at(0))}
    async with resources.transaction() as session:
        connection = await add_connection(session, web_id="A1", list_id="L1")
        session.add(
            Contact(
                connection_id=connection.id,
                address_id=1,
                email="anna@example.de",
                tags=[],
                subscribed=True,
                onoffice_status="yes",
                onoffice_changed_at=at(600),
                onoffice_addresses=dump_memory(planned),
            )
        )
        connection_id = connection.id
    # The person re-subscribes at the provider at 600: the applier writes Yes onto both
    # addresses and records the provider's state with what onOffice now shows.
    async with resources.transaction() as session:
        await ContactRepository.from_session(session).record_provider(
            connection_id,
            "anna@example.de",
            Signal("subscribed", at(600)),
            onoffice=Signal("yes", at(600)),
        )
    async with resources.sessionmaker() as session:
        rows = await ContactRepository.from_session(session).by_emails(
            connection_id, ["anna@example.de"]
        )
    row = rows["anna@example.de"]
    memory = load_memory(
        row.onoffice_addresses,
        owner=row.address_id,
        ledger=Signal(row.onoffice_status, row.onoffice_changed_at),
    )
    assert memory[2] == AddressMemory("yes", at(600), at(0))
    # So the agent's No on address 2 half a second later is a change, and the newest signal.
    plan = plan_person(
        "anna@example.de",
        [Seen(1, "yes"), Seen(2, "no")],
        memory,
        Signal("subscribed", at(600)),
        at(600.5),
        subscribed=True,
    )
    assert plan.signal.status == "no" and plan.unsubscribe and plan.set_no == (1,)
