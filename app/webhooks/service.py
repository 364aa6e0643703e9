"""Provider webhooks: verify, store every event first, acknowledge (applied asynchronously)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.repository import ConnectionRepository
from app.crypto import hash_token, token_matches
from app.db.base import utcnow
from app.db.models import Connection
from app.errors import AppError, NotFound, Unauthorized
from app.metrics import WEBHOOK_EVENTS
from app.resources import Resources
from app.webhooks.repository import InboundEventRepository
from providers.base import ProviderEvent, ProviderEventType
from providers.brevo.webhooks import parse_webhook as parse_brevo
from providers.mailchimp.webhooks import parse_webhook as parse_mailchimp

log = logging.getLogger(__name__)


# Ingest answers a burst from memory: a connection found by its webhook token is kept this long
# (a replaced token is refused at most this much later).
CONNECTION_CACHE_S = 10.0


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
        self, resources: Resources, provider: str, token: str
    ) -> Connection:
        """`connection_for`, answered from a short per-process cache during a burst."""
        cache: dict[str, tuple[float, Connection]] = resources.extra.setdefault(
            "webhook_connections", {}
        )
        key = hash_token(token)
        hit = cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now and hit[1].provider == provider:
            return hit[1]
        async with resources.sessionmaker() as session:
            connection = await self.connection_for(session, provider, token)
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (now + CONNECTION_CACHE_S, connection)
        return connection

    def check_brevo_bearer(self, connection: Connection, authorization: str | None) -> None:
        """Brevo must send `Authorization: Bearer <secret>`; the secret is not the URL token."""
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token_matches(
            credential.strip(), connection.webhook_secret_hash
        ):
            raise Unauthorized("the webhook's bearer token is missing or does not match")

    def parse_mailchimp(self, form: Sequence[tuple[str, str]]) -> list[ProviderEvent]:
        try:
            # An archive is a removal like a delete (single ones apply; a burst such as
            # "Archive All" is held for a user, see app.webhooks.apply).
            events = parse_mailchimp(form, archive_event=ProviderEventType.deleted)
        except ValueError as exc:
            raise AppError(f"malformed Mailchimp webhook: {exc}", status_code=400) from exc
        if not events:
            raise AppError("malformed Mailchimp webhook: no `type`", status_code=400)
        if any(e.type != ProviderEventType.ignored and not e.email for e in events):
            raise AppError("malformed Mailchimp webhook: no `data[email]`", status_code=400)
        return events

    def parse_brevo(self, connection: Connection, body: object) -> list[ProviderEvent]:
        try:
            events = parse_brevo(body)
        except ValueError as exc:
            raise AppError(f"malformed Brevo webhook: {exc}", status_code=400) from exc
        if not events and body != []:
            raise AppError(
                "malformed Brevo webhook: no event with an `email` and an `event` name",
                status_code=400,
            )
        if connection.list_id:
            # Brevo marketing webhooks are account-wide: keep only events of our list, and
            # unsubscribes from any list (one may blacklist the person account-wide; the
            # applier re-reads the contact to decide).
            events = [
                e
                for e in events
                if e.list_id in (None, connection.list_id)
                or e.type == ProviderEventType.unsubscribe
            ]
        return events

    async def store(
        self,
        resources: Resources,
        source: str,
        connection: Connection,
        events: Sequence[ProviderEvent],
    ) -> int:
        """Store the events (deduplicated per connection): one INSERT, committed. The caller
        kicks the connection's drain afterwards (`app.webhooks.owner.kick`)."""
        async with resources.engine.begin() as conn:
            ids = await InboundEventRepository.ingest(
                conn,
                source=source,
                # Scoped to the connection: another tenant's identical event is not a duplicate.
                events=[
                    (f"c{connection.id}:{event.dedupe_key}", event.model_dump(mode="json"))
                    for event in events
                ],
                received_at=utcnow(),
                connection_id=connection.id,
            )
        WEBHOOK_EVENTS.labels(source, "stored").inc(len(ids))
        WEBHOOK_EVENTS.labels(source, "duplicate").inc(len(events) - len(ids))
        log.info(
            "webhook.received",
            extra={"source": source, "connection_id": connection.id, "events": len(events)},
        )
        return len(ids)


webhook = WebhookService()
