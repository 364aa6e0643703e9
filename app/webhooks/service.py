"""Provider webhooks: verify, store every event first, acknowledge (applied asynchronously)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.factory import provider_label, webhook_deliveries
from app.connections.repository import ConnectionRepository
from app.crypto import hash_token, token_matches
from app.db.base import utcnow
from app.db.models import Connection
from app.errors import AppError, NotFound, Unauthorized
from app.inbox import owner
from app.inbox.repository import DEDUPE_KEY_MAX, IngestRow
from app.inbox.writer import IngestWriter, StaleConnection, check_of
from app.metrics import WEBHOOK_EVENTS
from app.resources import Resources
from providers.base import ProviderEvent

log = logging.getLogger(__name__)


# Ingest answers a burst from memory: a connection found by its webhook token is kept this long.
# Only the lookup is cached: every delivery is stored in a transaction that checks the
# connection still has that token (app.inbox.writer), so a replaced token is refused at once.
CONNECTION_CACHE_S = 60.0
CACHE_MAX = 10_000


def _cache(resources: Resources) -> dict[str, tuple[float, Connection]]:
    return resources.parts.webhook_connections


def writer(resources: Resources) -> IngestWriter:
    """The process's group-commit writer (one per resources)."""
    found = resources.parts.webhook_writer.get(
        lambda: IngestWriter(
            resources.engine, lambda connection_id: owner.kick(resources, connection_id)
        )
    )
    assert isinstance(found, IngestWriter)
    return found


async def close_writer(resources: Resources) -> None:
    """Let the writer finish its writes and kicks (before the resources close)."""
    found = resources.parts.webhook_writer.value
    if found is not None:
        await found.aclose()


class WebhookService:
    async def connection_for(self, session: AsyncSession, provider: str, token: str) -> Connection:
        """The connection whose URL token this is (looked up by its hash), or 404."""
        connection = await ConnectionRepository.from_session(session).by_webhook_token_hash(
            hash_token(token)
        )
        if connection is None or connection.provider != provider:
            raise NotFound("unknown webhook address")
        return connection

    async def cached_connection(
        self, resources: Resources, provider: str, token: str, *, fresh: bool = False
    ) -> Connection:
        """`connection_for`, answered from a per-process cache during a burst (`fresh`: look
        it up again, after `store` found the cached copy stale)."""
        cache = _cache(resources)
        key = hash_token(token)
        hit = None if fresh else cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now and hit[1].provider == provider:
            return hit[1]
        cache.pop(key, None)
        async with resources.sessionmaker() as session:
            connection = await self.connection_for(session, provider, token)
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[key] = (now + CONNECTION_CACHE_S, connection)
        return connection

    def check_bearer(self, connection: Connection, authorization: str | None) -> None:
        """`Authorization: Bearer <secret>` with the connection's webhook secret (not the URL
        token), for providers that send one."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token_matches(
            credential.strip(), connection.webhook_secret_hash
        ):
            raise Unauthorized("the webhook's bearer token is missing or does not match")

    def parse(self, connection: Connection, payload: object) -> list[ProviderEvent]:
        """One delivery's events, by the connection's provider (kept to the connection's
        list where the provider's webhooks are account-wide); 400 when it is malformed."""
        delivery = webhook_deliveries()[connection.provider]
        try:
            return delivery.parse(payload, connection.list_id)
        except ValueError as exc:
            label = provider_label(connection.provider)
            raise AppError(f"malformed {label} webhook: {exc}", status_code=400) from exc

    async def store(
        self,
        resources: Resources,
        source: str,
        connection: Connection,
        events: Sequence[ProviderEvent],
        *,
        kick: bool = False,
    ) -> int:
        """Store the events (deduplicated per connection), committed, in the process's group
        commit; how many were new. `StaleConnection` when `connection` (a cached copy) no
        longer matches the database: look it up again. `kick`: start the connection's drain
        after the commit (`app.inbox.owner.kick`, once per group)."""
        if not events:
            # Nothing to store (an empty array; events of another list of the account): the
            # answer needs no transaction, and the group commit is not involved.
            return 0
        received_at = utcnow()
        rows = [
            # Scoped to the connection: another tenant's identical event is not a duplicate.
            IngestRow(
                source=source,
                dedupe_key=f"c{connection.id}:{event.dedupe_key}"[:DEDUPE_KEY_MAX],
                payload=event.model_dump(mode="json"),
                connection_id=connection.id,
                received_at=received_at,
            )
            for event in events
        ]
        try:
            stored = await writer(resources).store(check_of(connection), rows, kick=kick)
        except StaleConnection:
            _cache(resources).pop(connection.webhook_token, None)
            raise
        WEBHOOK_EVENTS.labels(source, "stored").inc(stored)
        WEBHOOK_EVENTS.labels(source, "duplicate").inc(len(events) - stored)
        log.info(
            "webhook.received",
            extra={"source": source, "connection_id": connection.id, "events": len(events)},
        )
        return stored


webhook = WebhookService()
