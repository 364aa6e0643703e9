"""The lifecycle's small rules, directly: which opt-outs a switch writes back, which held
contacts an approval still unsubscribes, and that a cancelled run keeps its status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.db.models import Contact, HeldUnsubscribe, SyncRun
from app.lifecycle.held import still_held
from app.lifecycle.repository import LifecycleRepository
from app.lifecycle.switch import unseen
from app.resources import Resources
from app.syncs.common import fail_run
from providers.base import ProviderContact
from tests.rows import add_connection

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def member(
    status: str, at: datetime | None = T0, blacklisted: bool | None = None
) -> ProviderContact:
    return ProviderContact(email="a@x.de", status=status, last_changed=at, blacklisted=blacklisted)


def row(status: str | None, at: datetime | None) -> Contact:
    return Contact(email="a@x.de", address_id=1, onoffice_status=status, onoffice_changed_at=at)


@pytest.mark.parametrize(
    ("provider", "ledger", "expected"),
    [
        (member("unsubscribed"), None, True),  # never synced by us: onOffice cannot know it
        (member("blacklisted"), row("yes", T0 - timedelta(days=1)), True),
        (member("subscribed", blacklisted=True), row("yes", T0 - timedelta(days=1)), True),
        (member("unsubscribed"), row("no", T0 - timedelta(days=1)), False),  # seen already
        (member("unsubscribed"), row("cancellation", None), False),
        # A newer onOffice consent (beyond the clock tie) wins over the older opt-out.
        (member("unsubscribed"), row("yes", T0 + timedelta(minutes=1)), False),
        (member("unsubscribed"), row("yes", T0 + timedelta(seconds=3)), True),  # a tie
        (member("unsubscribed", at=None), row("yes", T0), True),  # unknown time: the opt-out
        (member("subscribed"), None, False),
        (member("cleaned"), None, False),  # a bounce is not an opt-out
        (member("archived"), None, False),  # nor is an archive (Archive All)
    ],
)
def test_a_switch_writes_back_only_opt_outs_onoffice_has_not_seen(
    provider: ProviderContact, ledger: Contact | None, expected: bool
) -> None:
    assert unseen(provider, ledger) is expected


@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        (Contact(subscribed=True, onoffice_changed_at=T0 - timedelta(days=1)), True),
        (Contact(subscribed=True, onoffice_changed_at=None), True),
        (Contact(subscribed=False, onoffice_changed_at=T0 - timedelta(days=1)), False),
        (None, False),  # gone from the ledger
        # onOffice changed it after the hold: the push decided afresh.
        (Contact(subscribed=True, onoffice_changed_at=T0 + timedelta(minutes=1)), False),
    ],
)
def test_an_approval_unsubscribes_a_held_contact_unless_it_changed_since(
    contact: Contact | None, expected: bool
) -> None:
    assert still_held(contact, T0) is expected


async def test_a_cancelled_run_is_never_failed_or_completed_afterwards(
    resources: Resources,
) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session, web_id="LC1", list_id="L1")
        run = SyncRun(connection_id=connection.id, status="cancelled", phase="cancelled")
        session.add(run)
        await session.flush()
        run_id = run.id
    await fail_run(resources, run_id, "late failure of a job in flight")
    async with resources.transaction() as session:
        lifecycle = LifecycleRepository.from_session(session)
        assert not await lifecycle.end_run(run_id, status="completed")
        assert await lifecycle.run_status(run_id) == "cancelled"
        assert (await session.get(SyncRun, run_id)).error is None  # type: ignore[union-attr]


async def test_the_held_set_is_stored_once_per_email(resources: Resources) -> None:
    async with resources.transaction() as session:
        connection = await add_connection(session, web_id="LC2", list_id="L1")
        run = SyncRun(connection_id=connection.id, status="completed")
        session.add(run)
        await session.flush()
        lifecycle = LifecycleRepository.from_session(session)
        rows = [{"email": "a@x.de", "address_id": 1, "held_at": T0}] * 2
        assert await lifecycle.hold(run.id, rows) == 1
        assert await lifecycle.count_held(run.id) == 1
        stored = (await session.execute(select(HeldUnsubscribe))).scalars().all()
        assert [(h.email, h.address_id, h.status) for h in stored] == [("a@x.de", 1, "held")]


async def test_the_sweep_hands_a_disconnected_groups_events_to_the_tenants_other_connection(
    resources: Resources,
) -> None:
    from app.connections.repository import ConnectionRepository
    from app.db.base import utcnow
    from app.db.models import Connection, InboundEvent
    from app.inbox.repository import InboundEventRepository
    from app.lifecycle.switch import tie_to_tenant
    from app.webhooks.drain import sweep

    async with resources.transaction() as session:
        group_a = await add_connection(session, web_id="LC3", list_id="L1", group_id="A")
        group_b = Connection(
            tenant_id=group_a.tenant_id,
            group_id="B",
            provider="mailchimp",
            api_key_encrypted=b"x",
            webhook_token="tok-b",
            list_id="L2",
        )
        session.add(group_b)
        await InboundEventRepository.from_session(session).create_on_conflict_do_nothing(
            source="mailchimp",
            dedupe_key="k1",
            payload={"type": "unsubscribe", "email": "a@x.de", "raw_type": "unsubscribe"},
            received_at=utcnow(),
            connection_id=group_a.id,
        )
        await session.flush()
        b_id = group_b.id
    async with resources.transaction() as session:
        found = await ConnectionRepository.from_session(session).get(group_a.id)
        assert found is not None
        await tie_to_tenant(session, found)  # what DELETE /api/v1/connection does first
        await ConnectionRepository.from_session(session).delete(found)
    await sweep(resources)
    async with resources.sessionmaker() as session:
        (event,) = (await session.execute(select(InboundEvent))).scalars().all()
    assert event.connection_id == b_id and event.tenant_id == group_a.tenant_id
