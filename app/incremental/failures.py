"""The incremental push's transient failure for one address, which never holds up the others:
it is retried on its own (a change the provider refused is recorded on the contact through the
address's `LedgerWriter.refused`)."""

from __future__ import annotations

import logging
import time

from app.db.models import Connection
from app.db.session import Database
from app.inbox.events import store
from app.inbox.jobs import ONOFFICE_SOURCE
from app.incremental.jobs import enqueue_drain

log = logging.getLogger(__name__)


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
