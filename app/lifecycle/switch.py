"""Before a connection's provider, account or list changes, or the connection goes.

* A switch while a full sync is queued or running is refused (409): the run's jobs load the
  connection afresh and would go on against the new list with a wiped ledger.
* Before the ledger and list state are wiped (switch) or deleted (disconnect), the old list's
  opt-outs that onOffice has not seen (a lost webhook, an unsubscribe made through the API,
  a change in the provider's UI) are read from the provider and written back to onOffice the
  way a full sync writes them back (`write_back_opt_out`), and the connection's acknowledged
  events still pending are applied at once (`drain_now`).
* What cannot be applied now (onOffice down) is not lost: the events stay tied to the tenant
  (`inbound_event.tenant_id`), and the next save of a connection of that tenant adopts them
  and applies them. Held bursts stay held for a user to decide.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_for_connection
from app.contacts.ledger import write_back_opt_out
from app.contacts.repository import ContactRepository
from app.contacts.rules import EXPLICIT_NO, UNSUBSCRIBED_STATES, Signal, newer
from app.contacts.values import normalise_email
from app.db.models import Connection, Contact
from app.errors import Conflict
from app.lifecycle.repository import LifecycleRepository
from app.resources import Resources
from app.syncs.repository import SyncRepository
from app.webhooks.drain import drain_now
from app.webhooks.jobs import enqueue_apply
from providers.base import ProviderContact, ProviderError, ProviderState

log = logging.getLogger(__name__)

# Provider states that are someone's explicit opt-out (a bounce or an archive is not one).
OPTED_OUT = UNSUBSCRIBED_STATES
# How long a save or a disconnect spends applying pending events before it goes on.
APPLY_BUDGET_S = 20.0
WRITE_CHUNK = 500


async def refuse_while_running(session: AsyncSession, connection_id: int) -> None:
    """409 while a full sync of the connection is queued or running."""
    active = await SyncRepository.from_session(session).active_run(connection_id)
    if active is not None:
        raise Conflict(
            "err.switch_during_sync",
            params={"run": active.id, "status": f"@ui.st_{active.status}"},
            run_id=active.id,
        )


def unseen(member: ProviderContact, row: Contact | None) -> bool:
    """An opt-out at the provider onOffice has not seen: onOffice does not say No (or
    Cancellation) for it, and no onOffice change is newer than it (a fresh consent)."""
    if not (member.status in OPTED_OUT or member.blacklisted):
        return False
    if row is None:
        return True
    if row.onoffice_status in EXPLICIT_NO:
        return False
    if member.last_changed is None:
        return True  # an unknown time goes to the opt-out
    return not newer(row.onoffice_changed_at, member.last_changed)


async def write_back_unseen_opt_outs(resources: Resources, connection: Connection) -> int:
    """Read the list's opted-out members and write those onOffice has not seen back to it
    (stored as write-back events of the connection); how many were stored."""
    if not connection.list_id:
        return 0
    provider = provider_for_connection(resources, connection)
    found: dict[str, ProviderContact] = {}
    async for member in provider.iter_contacts(connection.list_id):
        if member.status in OPTED_OUT or member.blacklisted:
            found[normalise_email(member.email)] = member
    emails = list(found)
    stored = 0
    for start in range(0, len(emails), WRITE_CHUNK):
        chunk = emails[start : start + WRITE_CHUNK]
        async with resources.transaction() as session:
            ledger = await LifecycleRepository.from_session(session).contacts_by_email(
                connection.id, chunk
            )
            for email in chunk:
                member = found[email]
                if not unseen(member, ledger.get(email)):
                    continue
                status = ProviderState.blacklisted if member.blacklisted else member.status
                signal = Signal(status, member.last_changed)
                if await write_back_opt_out(
                    session, connection.provider, connection.id, email, signal
                ):
                    stored += 1
    return stored


async def settle_before_change(resources: Resources, connection: Connection) -> int:
    """The old list's unseen opt-outs are written back and every pending event is applied
    (within APPLY_BUDGET_S); how many events are still pending afterwards."""
    try:
        written = await write_back_unseen_opt_outs(resources, connection)
    except ProviderError as exc:
        # The old key may be revoked or the provider down: the events already stored are
        # still applied, and the switch is not blocked by an account that is gone.
        log.warning("connection.opt_outs_not_read", extra={"error": exc.message})
        written = 0
    await drain_now(resources, connection.id, budget_s=APPLY_BUDGET_S)
    async with resources.sessionmaker() as session:
        left = await LifecycleRepository.from_session(session).count_pending(connection.id)
    log.info(
        "connection.settled",
        extra={"connection_id": connection.id, "written_back": written, "pending": left},
    )
    return left


async def swap_ledger(session: AsyncSession, connection: Connection, ledger_key: str) -> None:
    """A switch to the list `ledger_key`: the ledger of the list the connection leaves is
    parked (kept per customer, group and list), the ledger and list state are wiped, and the
    ledger parked for the new list, if the customer's connection was there before, is
    restored. Without it, a member the connector subscribed at list A stayed subscribed there
    after A -> B -> A although the person opted out meanwhile: the run back at A did not know
    it had subscribed them (a full sync reads only the newsletter-Yes addresses). What changed
    at A meanwhile (its webhooks went elsewhere) is read by the next full sync, as after a lost
    webhook. A person the new list has no row for starts from its newest opt-out or removal
    at the customer's other lists (`carry_opt_outs`), so an unchanged Yes is no fresh consent
    there either."""
    lifecycle = LifecycleRepository.from_session(session)
    parked = 0
    if connection.ledger_key:
        parked = await lifecycle.park_ledger(connection, connection.ledger_key)
    await ContactRepository.from_session(session).wipe(connection.id)
    restored = await lifecycle.restore_ledger(connection, ledger_key)
    carried = await lifecycle.carry_opt_outs(connection, ledger_key)
    log.info(
        "connection.ledger_swapped",
        extra={
            "connection_id": connection.id,
            "parked": parked,
            "restored": restored,
            "carried": carried,
        },
    )


async def park_on_disconnect(session: AsyncSession, connection: Connection) -> None:
    """Before the connection goes: its ledger is parked for its list (a later connection of
    the customer and group to that list, directly or after a switch, restores it)."""
    if connection.ledger_key:
        await LifecycleRepository.from_session(session).park_ledger(
            connection, connection.ledger_key
        )


async def restore_on_connect(session: AsyncSession, connection: Connection) -> None:
    """A new connection starts from the ledger parked for its list, if any, and from the
    customer's opt-outs and removals at other lists (`swap_ledger`)."""
    if connection.ledger_key:
        lifecycle = LifecycleRepository.from_session(session)
        await lifecycle.restore_ledger(connection, connection.ledger_key)
        await lifecycle.carry_opt_outs(connection, connection.ledger_key)


async def tie_to_tenant(session: AsyncSession, connection: Connection) -> None:
    """Before the connection is deleted: its events keep their tenant."""
    await LifecycleRepository.from_session(session).tie_events_to_tenant(
        connection.id, connection.tenant_id
    )


async def adopt_orphans(session: AsyncSession, connection: Connection) -> int:
    """Events a disconnect left pending or held join this connection and are applied."""
    adopted = await LifecycleRepository.from_session(session).adopt_orphans(
        connection.tenant_id, connection.id
    )
    if adopted:
        enqueue_apply(connection.id)
        log.info(
            "connection.events_adopted", extra={"connection_id": connection.id, "events": adopted}
        )
    return adopted
