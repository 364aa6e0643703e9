"""Incremental sync, trigger 1: onOffice's "address saved" webhook.

The events are stored as `inbound_event` rows (source "onoffice") and drained in arrival order,
a round of EVENTS_PER_ROUND at a time; duplicates of an address within a round are read and
pushed once (`push.push_addresses`). An address onOffice no longer returns was deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.db.base import utcnow
from app.db.models import InboundEvent, InboundEventStatus
from app.incremental.push import push_addresses
from app.resources import Resources
from app.webhooks.repository import InboundEventRepository
from app.worker.context import retry_later, retry_or_fail
from app.worker.locks import exclusive
from app.worker.queue import compute_backoff
from onoffice_client.models import (
    Address,
    NewsletterStatus,
    OnOfficeAccessLost,
    OnOfficeClaimError,
    OnOfficeError,
    OnOfficeTransientError,
)
from providers.base import ProviderError, ProviderTransientError

log = logging.getLogger(__name__)

EVENTS_PER_ROUND = 200


async def drain(resources: Resources, *, job_try: int = 1, max_tries: int = 10) -> None:
    """Push the addresses of pending onOffice webhook events, oldest first, one round after
    another; duplicates of an address within a round are read and pushed once."""
    async with exclusive(resources, "onoffice-events") as acquired:
        if not acquired:
            retry_later(1 + compute_backoff(1))
        while await _drain_round(resources, job_try=job_try, max_tries=max_tries):
            pass


async def _drain_round(resources: Resources, *, job_try: int, max_tries: int) -> bool:
    async with resources.sessionmaker() as session:
        events = await InboundEventRepository.from_session(session).pending(
            source="onoffice", limit=EVENTS_PER_ROUND
        )
    if not events:
        return False
    by_tenant: dict[int, list[InboundEvent]] = {}
    for event in events:
        by_tenant.setdefault(int(event.payload.get("tenant_id") or 0), []).append(event)
    for tenant_id, tenant_events in by_tenant.items():
        status: str
        note: str | None
        try:
            await _push_tenant_events(resources, tenant_id, tenant_events)
            status, note = InboundEventStatus.applied, None
        except (ProviderTransientError, OnOfficeTransientError) as exc:
            await _mark(resources, tenant_events, InboundEventStatus.pending, str(exc), tried=True)
            retry_or_fail(exc, transient=True, job_try=job_try, max_tries=max_tries, cap=120)
            raise
        except (ProviderError, OnOfficeError) as exc:
            status, note = _after_error(
                tenant_events, exc, resources.settings.INBOUND_EVENT_MAX_ATTEMPTS
            )
        await _mark(resources, tenant_events, status, note, tried=True)
    return True


def _after_error(
    events: Sequence[InboundEvent], exc: Exception, max_attempts: int
) -> tuple[str, str]:
    attempts = max(e.attempts for e in events) + 1
    status = InboundEventStatus.failed if attempts >= max_attempts else InboundEventStatus.pending
    return status, str(exc)[:2000]


async def _push_tenant_events(
    resources: Resources, tenant_id: int, events: Sequence[InboundEvent]
) -> None:
    async with resources.sessionmaker() as session:
        repo = ConnectionRepository.from_session(session)
        tenant = await repo.get_tenant(tenant_id)
        connections = await repo.all_for_tenant(tenant_id)
        refused = await OnOfficeAccessRepository.from_session(session).refused()
    if tenant is None or not connections:
        return
    ids = list(dict.fromkeys(int(e.payload["address_id"]) for e in events))
    for connection in connections:
        if connection.id in refused:
            continue  # onOffice refuses its access: its poll brings these changes once it works
        # Each connection reads with its own group's claim and scope: an address it cannot
        # read (deleted in onOffice, or outside its scope) is gone for it: what it synced for
        # that address is unsubscribed from its list, and nothing else is sent.
        onoffice = onoffice_for_connection(resources, tenant, connection)
        try:
            addresses = await onoffice.get_addresses(ids)
        except OnOfficeAccessLost:
            continue  # recorded (app/connections/access.py); its watermark stays put
        except OnOfficeClaimError as exc:
            # This group waits for a user to open the connector; its poll (whose watermark
            # stays put meanwhile) brings these changes then. The other connections go on.
            log.info(
                "incremental.connection_waits_for_claim",
                extra={"connection_id": connection.id, "error": str(exc)},
            )
            continue
        found = {a.id for a in addresses}
        gone = [
            Address(id=i, newsletter=NewsletterStatus.not_specified, active=False)
            for i in ids
            if i not in found
        ]
        provider = provider_for_connection(resources, connection)
        await push_addresses(resources, provider, connection, [*addresses, *gone], onoffice)


async def _mark(
    resources: Resources,
    events: Sequence[InboundEvent],
    status: str,
    note: str | None,
    *,
    tried: bool,
) -> None:
    async with resources.transaction() as session:
        await InboundEventRepository.from_session(session).update_events(
            [e.id for e in events],
            tried=tried,
            status=status,
            last_error=note,
            applied_at=utcnow() if status == InboundEventStatus.applied else None,
        )
