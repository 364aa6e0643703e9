"""Provider webhooks: verify, store every event first, acknowledge (applied asynchronously)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.repository import ConnectionRepository
from app.crypto import hash_token, token_matches
from app.db.base import utcnow
from app.db.models import Connection
from app.errors import AppError, NotFound, Unauthorized
from app.metrics import WEBHOOK_EVENTS
from app.webhooks.jobs import apply_job_id
from app.webhooks.repository import InboundEventRepository
from app.worker.queue import enqueue_job
from providers.base import ProviderEvent, ProviderEventType
from providers.brevo.webhooks import parse_webhook as parse_brevo
from providers.mailchimp.webhooks import parse_webhook as parse_mailchimp

log = logging.getLogger(__name__)


class WebhookService:
    async def connection_for(self, session: AsyncSession, provider: str, token: str) -> Connection:
        """The connection whose URL token this is (looked up by its hash), or 404."""
        connection = await ConnectionRepository.from_session(session).by_webhook_token_hash(
            hash_token(token)
        )
        if connection is None or connection.provider != provider:
            raise NotFound("unknown webhook address")
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
        session: AsyncSession,
        source: str,
        connection: Connection,
        events: Sequence[ProviderEvent],
    ) -> int:
        """Store the events (deduplicated per connection) and enqueue their apply job."""
        repo = InboundEventRepository.from_session(session)
        ids = await repo.create_many_on_conflict_do_nothing(
            source=source,
            # Scoped to the connection: another tenant's identical event is not a duplicate.
            events=[
                (f"c{connection.id}:{event.dedupe_key}", event.model_dump(mode="json"))
                for event in events
            ],
            received_at=utcnow(),
            connection_id=connection.id,
        )
        if ids:
            # Jobs of one connection take turns (a lock) and apply its events in arrival order.
            enqueue_job(
                "webhooks.apply",
                _job_id=apply_job_id(connection.id, ids[0]),
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
