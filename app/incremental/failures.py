"""The incremental push's failures for one address, which never hold up the others: a change
the provider refused is recorded on the contact (shown in the status), a transient failure is
retried on its own."""

from __future__ import annotations

import logging
import time

from app.contacts.repository import ContactRepository
from app.contacts.values import check_email
from app.db.models import Connection, Contact
from app.db.session import Database
from app.inbox.events import store
from app.inbox.jobs import ONOFFICE_SOURCE
from app.incremental.jobs import enqueue_drain
from onoffice_client.models import Address

log = logging.getLogger(__name__)


async def record_refusal(
    db: Database, connection: Connection, address: Address, reason: str
) -> None:
    """The provider refused this change: recorded on the contact, the others go on."""
    email = check_email(address.email).email
    log.warning(
        "incremental.refused",
        extra={"connection_id": connection.id, "address_id": address.id, "reason": reason},
    )
    async with db.transaction() as session:
        repo = ContactRepository.from_session(session)
        row = (await repo.by_address_ids(connection.id, [address.id])).get(address.id)
        if row is None and email:
            row = await repo.by_email(connection.id, email)
        if row is not None:
            await repo.update(row.id, rejected_reason=reason[:2000])
        elif email:
            repo.add(
                Contact(
                    connection_id=connection.id,
                    address_id=address.id,
                    email=email,
                    tags=[],
                    rejected_reason=reason[:2000],
                )
            )


async def retry_later(
    db: Database, connection: Connection, address_id: int, exc: Exception
) -> None:
    """A transient failure for one address: an "address saved" event retries it on its own."""
    log.warning(
        "incremental.retry_later",
        extra={"connection_id": connection.id, "address_id": address_id, "error": str(exc)},
    )
    async with db.transaction() as session:
        stored = await store(
            session,
            source=ONOFFICE_SOURCE,
            dedupe_key=f"retry:{connection.id}:{address_id}:{int(time.time() // 60)}",
            payload={"tenant_id": connection.tenant_id, "address_id": address_id},
            connection_id=connection.id,
        )
        if stored.new:
            enqueue_drain(connection.id, f"retry:{stored.id}", defer_s=30)
