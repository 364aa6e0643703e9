"""A provider's email change (Mailchimp's `upemail`): every onOffice address with the old email
gets the new one, each recorded in the consent history under both emails; the ledger follows
when no contact owns the new email yet. Applied one event at a time by `EventApplier`
(`app.webhooks.apply`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.repository import ContactRepository
from app.contacts.values import normalise_email
from app.db.models import Connection, Contact, InboundEvent, InboundEventStatus
from app.db.session import Database
from app.history.events import EMAIL, written
from app.history.writer import Entry
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import Address
from providers.base import ProviderEvent


class EventApplier(Protocol):
    """What an email change needs of `app.webhooks.apply.EventApplier` (a protocol, so that
    this module does not import the applier that imports it)."""

    connection: Connection
    db: Database
    onoffice: OnOfficeClient

    async def _find(self, email: str) -> list[Address]: ...

    async def _history(self, session: AsyncSession, entries: Iterable[Entry]) -> None: ...


async def change_email(
    applier: EventApplier,
    row: InboundEvent,
    event: ProviderEvent,
    email: str,
    contact: Contact | None,
) -> tuple[str, str | None]:
    new_email = normalise_email(event.new_email or "")
    if not new_email or new_email == email:
        return InboundEventStatus.ignored, "no new email in the event"
    addresses = await applier._find(email)
    changed: list[int] = []
    try:
        for address in addresses:
            await applier.onoffice.change_email(address.id, address.email, new_email)
            changed.append(address.id)
    finally:
        # Under both emails: each one's history tells where the address went or came from. A
        # retry after a failure finds only the addresses that still have the old email.
        moved = [(a, EMAIL) for a in changed]
        entries = written(row, moved, email=email, note=new_email)
        entries += written(row, moved, email=new_email, note=email)
        async with applier.db.transaction() as session:
            await applier._history(session, entries)
            repo = ContactRepository.from_session(session)
            if (
                contact is not None
                and len(changed) == len(addresses)
                and await repo.owner_of(applier.connection.id, new_email) is None
            ):
                await repo.update(contact.id, email=new_email)
    return InboundEventStatus.applied, None
