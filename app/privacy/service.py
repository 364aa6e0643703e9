"""Retention, erasure and the purge of a cancelled customer (the data-protection rules of
docs/data-protection.md)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.connections.factory import provider_for_connection
from app.contacts.values import normalise_email
from app.db.base import utcnow
from app.history.repository import HistoryRepository
from app.privacy.repository import PrivacyRepository
from app.resources import Resources

log = logging.getLogger(__name__)

# Rows deleted per statement and transaction (a purge never holds long locks).
PURGE_CHUNK = 5000


@dataclass
class Purged:
    events: int = 0
    history: int = 0  # consent history entries older than RETENTION_HISTORY_DAYS
    runs: int = 0
    run_rows: int = 0
    tenants: list[str] = field(default_factory=list)


async def _in_chunks(resources: Resources, purge: Callable[[AsyncSession], Awaitable[int]]) -> int:
    """Run a purge of at most PURGE_CHUNK rows per transaction until it finds fewer."""
    total = 0
    while True:
        async with resources.transaction() as session:
            n = await purge(session)
        total += n
        if n < PURGE_CHUNK:
            return total


async def purge_expired(resources: Resources, now: datetime | None = None) -> Purged:
    """Delete what has outlived its retention period (the hourly `privacy.purge` job)."""
    settings: Settings = resources.settings
    now = now or utcnow()
    purged = Purged()
    events_before = now - timedelta(days=settings.RETENTION_EVENT_DAYS)
    history_before = now - timedelta(days=settings.RETENTION_HISTORY_DAYS)
    purged.events = await _in_chunks(
        resources,
        lambda session: PrivacyRepository.from_session(session).purge_settled_events(
            events_before, PURGE_CHUNK
        ),
    )
    purged.history = await _in_chunks(
        resources,
        lambda session: HistoryRepository.from_session(session).purge_before(
            history_before, PURGE_CHUNK
        ),
    )
    runs_before = now - timedelta(days=settings.RETENTION_RUN_DETAIL_DAYS)
    while True:
        async with resources.transaction() as session:
            repo = PrivacyRepository.from_session(session)
            runs = await repo.expired_runs(runs_before, 100)
            if runs:
                purged.run_rows += await repo.purge_run_details(runs)
        purged.runs += len(runs)
        if len(runs) < 100:
            break
    grace_before = now - timedelta(days=settings.TENANT_PURGE_GRACE_DAYS)
    async with resources.transaction() as session:
        due = await PrivacyRepository.from_session(session).tenants_to_purge(grace_before)
    for customer in due:
        if await purge_tenant(resources, customer, require_inactive=True):
            purged.tenants.append(customer)
    if purged.events or purged.history or purged.runs or purged.tenants:
        log.info(
            "privacy.purged",
            extra={
                "events": purged.events,
                "history": purged.history,
                "runs": purged.runs,
                "run_rows": purged.run_rows,
                "tenants": len(purged.tenants),
            },
        )
    return purged


@dataclass(frozen=True)
class Forgotten:
    found: bool
    rows: dict[str, int] = field(default_factory=dict)
    deleted_at_provider: int = 0


async def forget(
    resources: Resources, customer_web_id: str, email: str, *, delete_at_provider: bool
) -> Forgotten:
    """Erase one person (an email) from every table of the connector for this customer, and
    with `delete_at_provider` delete the contact at each of the customer's lists (Mailchimp:
    permanent delete, Brevo: delete) instead of only unsubscribing. onOffice itself is the
    customer's own system and is not touched."""
    normalised = normalise_email(email)
    async with resources.transaction() as session:
        repo = PrivacyRepository.from_session(session)
        tenant = await repo.tenant(customer_web_id)
        if tenant is None:
            return Forgotten(found=False)
        connections = await repo.connections(tenant.id)
    deleted = 0
    if delete_at_provider:
        # First at the provider: if it fails, nothing local is gone and the erasure can be
        # repeated as a whole.
        for connection in connections:
            if connection.list_id:
                provider = provider_for_connection(resources, connection)
                await provider.delete_contact_permanently(connection.list_id, normalised)
                deleted += 1
    async with resources.transaction() as session:
        rows = await PrivacyRepository.from_session(session).forget_email(
            tenant.id, [c.id for c in connections], normalised
        )
    log.info(
        "privacy.forgotten",
        extra={"tenant_id": tenant.id, "rows": sum(rows.values()), "provider_lists": deleted},
    )
    return Forgotten(found=True, rows=rows, deleted_at_provider=deleted)


async def purge_tenant(
    resources: Resources, customer_web_id: str, *, require_inactive: bool = True
) -> bool:
    """Delete every row of a customer. Only a deactivated customer is purged unless
    `require_inactive` is False. Returns whether it was purged."""
    async with resources.transaction() as session:
        repo = PrivacyRepository.from_session(session)
        tenant = await repo.tenant(customer_web_id)
        if tenant is None or (require_inactive and tenant.active):
            return False
        await repo.purge_tenant(tenant)
    log.info("privacy.tenant_purged", extra={"customer": customer_web_id})
    return True
