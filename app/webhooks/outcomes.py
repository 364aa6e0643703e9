"""What becomes of a stored event: finished (with its metrics), a failed try counted (parked as
failed after INBOUND_EVENT_MAX_ATTEMPTS), or held as part of a removal burst (Mailchimp's
"Archive All") for a person to apply or dismiss."""

from __future__ import annotations

import logging

from app.connections.factory import (
    BURST_SOURCES,
)
from app.db.base import aware, utcnow
from app.db.models import InboundEvent, InboundEventStatus
from app.metrics import WEBHOOK_EVENTS, WEBHOOK_LAG
from app.resources import Resources
from app.webhooks.repository import InboundEventRepository
from onoffice_client.models import (
    OnOfficeClaimError,
)

log = logging.getLogger(__name__)


def is_burst_candidate(row: InboundEvent) -> bool:
    return (
        row.source in BURST_SOURCES
        and row.payload.get("type") == "deleted"
        and not row.dedupe_key.startswith("reconcile:")
    )


async def hold_burst(resources: Resources, connection_id: int) -> bool:
    """Mailchimp sends one event per contact for "Archive All": a burst of removals within
    ARCHIVE_BURST_WINDOW_S is held (status `held`) for a user to apply or dismiss."""
    settings = resources.settings
    async with resources.transaction() as session:
        repo = InboundEventRepository.from_session(session)
        removals = await repo.pending_removals(connection_id, InboundEventStatus.pending)
        fresh = [r for r in removals if not r.payload.get("_released")]
        if not fresh:
            return False
        # While a burst is held, later removals join it ("Archive All" of a large audience
        # arrives over minutes).
        if await repo.count_held(connection_id) == 0:
            if len(fresh) < settings.ARCHIVE_BURST_THRESHOLD:
                return False
            times = sorted(aware(r.received_at) or utcnow() for r in fresh)
            span = (times[-1] - times[0]).total_seconds()
            if (
                span > settings.ARCHIVE_BURST_WINDOW_S
                and len(fresh) < 2 * settings.ARCHIVE_BURST_THRESHOLD
            ):
                return False
        await repo.set_status(
            [r.id for r in fresh],
            InboundEventStatus.held,
            last_error="held: many archives/deletes at once (Archive All?); apply or dismiss",
        )
    log.warning("webhook.burst_held", extra={"connection_id": connection_id, "events": len(fresh)})
    return True


async def finish_event(
    resources: Resources, row: InboundEvent, status: str, note: str | None
) -> None:
    async with resources.transaction() as session:
        await InboundEventRepository.from_session(session).update_events(
            [row.id], tried=True, status=status, applied_at=utcnow(), last_error=note
        )
    WEBHOOK_EVENTS.labels(row.source, status).inc()
    received = aware(row.received_at)
    WEBHOOK_LAG.labels(row.source).observe(max(0.0, (utcnow() - received).total_seconds()))


async def record_failure(
    resources: Resources, row: InboundEvent, exc: Exception, max_attempts: int, retryable: bool
) -> bool:
    """Count a failed try; True when the event is given up on (parked as failed)."""
    attempts = row.attempts + 1
    give_up = not retryable or attempts >= max_attempts
    if isinstance(exc, OnOfficeClaimError):
        give_up = False
    async with resources.transaction() as session:
        await InboundEventRepository.from_session(session).update_events(
            [row.id],
            attempts=attempts,
            last_error=str(exc)[:2000],
            status=InboundEventStatus.failed if give_up else InboundEventStatus.pending,
        )
    row.attempts = attempts
    log.warning(
        "webhook.apply_failed",
        extra={"event_id": row.id, "attempts": attempts, "gave_up": give_up, "error": str(exc)},
    )
    if give_up:
        WEBHOOK_EVENTS.labels(row.source, "failed").inc()
    return give_up
