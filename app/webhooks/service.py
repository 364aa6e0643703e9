"""Provider webhooks: verify, store every event first, acknowledge (applied asynchronously)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.repository import ConnectionRepository
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
        connection = await ConnectionRepository.from_session(session).by_webhook_token(token)
        if connection is None or connection.provider != provider:
            raise NotFound("unknown webhook address")
        return connection

    async def receive_mailchimp(
        self, session: AsyncSession, token: str, form: Sequence[tuple[str, str]]
    ) -> int:
        connection = await self.connection_for(session, "mailchimp", token)
        try:
            # An archive is a removal like a delete (single ones apply; a burst such as
            # "Archive All" is held for a user, see app.webhooks.apply).
            events = parse_mailchimp(form, archive_event=ProviderEventType.deleted)
        except ValueError as exc:
            raise AppError(f"malformed Mailchimp webhook: {exc}", status_code=400) from exc
        return await self._store(session, "mailchimp", connection, events)

    async def receive_brevo(
        self, session: AsyncSession, token: str, authorization: str | None, body: Any
    ) -> int:
        connection = await self.connection_for(session, "brevo", token)
        expected = f"Bearer {connection.webhook_token}"
        if authorization is not None and not hmac.compare_digest(authorization, expected):
            raise Unauthorized("the webhook's bearer token does not match")
        try:
            events = parse_brevo(body)
        except ValueError as exc:
            raise AppError(f"malformed Brevo webhook: {exc}", status_code=400) from exc
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
        return await self._store(session, "brevo", connection, events)

    async def _store(
        self,
        session: AsyncSession,
        source: str,
        connection: Connection,
        events: Sequence[ProviderEvent],
    ) -> int:
        repo = InboundEventRepository.from_session(session)
        stored = 0
        first_id: int | None = None
        for event in events:
            event_id = await repo.create_on_conflict_do_nothing(
                source=source,
                dedupe_key=event.dedupe_key,
                payload=event.model_dump(mode="json"),
                received_at=utcnow(),
                connection_id=connection.id,
            )
            stored += event_id is not None
            if first_id is None and event_id is not None:
                first_id = event_id
        if first_id is not None:
            # Jobs of one connection take turns (a lock) and apply its events in arrival order.
            enqueue_job(
                "webhooks.apply",
                _job_id=apply_job_id(connection.id, first_id),
                connection_id=connection.id,
            )
        WEBHOOK_EVENTS.labels(source, "stored").inc(stored)
        WEBHOOK_EVENTS.labels(source, "duplicate").inc(len(events) - stored)
        log.info(
            "webhook.received",
            extra={"source": source, "connection_id": connection.id, "events": len(events)},
        )
        return stored


webhook = WebhookService()
