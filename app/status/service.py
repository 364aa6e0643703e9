"""What the status page shows: both sides' counts, the latest runs and pending work."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.ext.asyncio import AsyncSession

from app.attention.rules import attention
from app.connections.errors import PROVIDER_LABELS, STATUS_PAGES
from app.connections.factory import provider_for_connection
from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.connections.service import connection as connection_service
from app.contacts.confirm import shown_in
from app.contacts.repository import ContactRepository
from app.db.base import aware
from app.db.models import (
    Connection,
    InboundEventStatus,
    SyncRun,
    SyncRunStatus,
)
from app.i18n import reasons, render_stored, t
from app.inbox.repository import InboundEventRepository
from app.reconcile.repository import ReconcileRepository
from app.resources import Resources
from app.status.schemas import (
    HeldBack,
    OnOfficeAccessState,
    PendingWork,
    Reconciliation,
    RefusedChange,
    Status,
    UnconfirmedEvent,
    WebhookHealth,
)
from app.status.scope import scope_status
from app.status.webhook import webhook_health
from app.syncs.numbers import side_counts
from app.syncs.repository import SyncRepository
from app.syncs.service import sync as sync_service
from app.tenants.auth import TenantContext
from app.webhooks import checkup
from providers.base import ProviderError

LIVE_COUNT_TIMEOUT_S = 5.0
# A user's webhook check within this many seconds of the last one is not repeated.
CHECK_NOW_MIN_AGE_S = 10
UNCONFIRMED_SHOWN = 20


class StatusService:
    async def get(
        self, session: AsyncSession, resources: Resources, tenant: TenantContext, lang: str = "en"
    ) -> Status:
        connection = await ConnectionRepository.from_session(session).for_tenant(
            tenant.tenant_id, tenant.group_id
        )
        if connection is None:
            return Status(
                connected=False,
                connection=None,
                counts=None,
                last_sync=None,
                last_completed_sync=None,
                pending=PendingWork(sync_batches=0, inbound_events=0, failed_inbound_events=0),
                status_pages=dict(STATUS_PAGES),
            )
        # No database connection is held while the provider answers (one tenant's slow
        # provider must not starve the pool all tenants share): the read-only transaction so
        # far is ended first; the queries below check out a connection again.
        repo = SyncRepository.from_session(session)
        last = await repo.latest_run(connection.id)
        completed = await repo.latest_completed_run(connection.id)
        await session.commit()
        # A run that moved on since the count was cached makes it stale at once.
        version = (last.id, str(last.status)) if last else None
        provider_count, provider_error = await live_count(resources, connection, lang, version)
        pending_batches = await repo.count_pending_batches(connection.id)
        inbound = InboundEventRepository.from_session(session)
        events = await inbound.counts_by_status(connection.id)
        unconfirmed = await inbound.unconfirmed(connection.id, UNCONFIRMED_SHOWN)
        reference = completed or last
        contacts = ContactRepository.from_session(session)
        refused = await contacts.refused(connection.id)
        held_back = await self._held_back(
            session,
            repo,
            reference,
            connection.id,
            lang,
            PROVIDER_LABELS.get(connection.provider, ""),
        )
        last_event_at = await InboundEventRepository.from_session(session).last_received_at(
            connection.id, connection.provider
        )
        found = Status(
            connected=True,
            connection=connection_service.to_read(resources, connection),
            counts=side_counts(
                reference,
                provider_count,
                provider_error,
                await contacts.count_subscribed(connection.id),
            ),
            last_sync=sync_service.to_read(last, lang=lang) if last else None,
            last_completed_sync=sync_service.to_read(completed, lang=lang) if completed else None,
            pending=PendingWork(
                sync_batches=int(pending_batches or 0),
                inbound_events=int(events.get(InboundEventStatus.pending, 0)),
                failed_inbound_events=int(events.get(InboundEventStatus.failed, 0)),
                held_inbound_events=int(events.get(InboundEventStatus.held, 0)),
            ),
            refused_changes=[
                RefusedChange(
                    address_id=c.address_id,
                    email=c.email,
                    reason=reasons.render_rejection(lang, c.rejected_reason),
                )
                for c in refused
            ],
            refused_total=await contacts.count_refused(connection.id),
            unconfirmed_events=[
                UnconfirmedEvent(
                    event_id=e.id,
                    email=str(e.payload.get("email", "")),
                    event=str(e.payload.get("raw_type", "")),
                    reason=e.last_error or "",
                    received_at=e.received_at,
                    claimed=str(e.payload.get("type", "")),
                    new_email=e.payload.get("new_email") or None,
                    shown=shown_in(e.last_error or ""),
                )
                for e in unconfirmed
            ],
            unconfirmed_total=int(events.get(InboundEventStatus.unconfirmed, 0)),
            held_back=held_back,
            reconciliation=await self._reconciliation(session, resources, connection.id),
            webhook=webhook_health(connection, last_event_at, lang),
            status_pages=dict(STATUS_PAGES),
            scope=await scope_status(session, resources, connection, lang),
            onoffice_access=await access_state(session, resources, connection, lang),
        )
        found.attention = attention(found, lang)
        return found

    async def _reconciliation(
        self, session: AsyncSession, resources: Resources, connection_id: int
    ) -> Reconciliation:
        state = await ReconcileRepository.from_session(session).get(connection_id)
        interval = resources.settings.PROVIDER_RECONCILE_INTERVAL_S
        if state is None:
            return Reconciliation(result="never", interval_s=interval)
        return Reconciliation(
            result=state.result,
            last_attempt_at=state.attempted_at,
            last_success_at=state.finished_at,
            changed=state.changed,
            events=state.events,
            error=state.error,
            interval_s=interval,
        )

    async def check_webhook(
        self, session: AsyncSession, resources: Resources, tenant: TenantContext, lang: str
    ) -> WebhookHealth:
        """Check (and repair) the webhook now, as the periodic check does; a check younger
        than CHECK_NOW_MIN_AGE_S is not repeated."""
        connection = await connection_service.get(session, tenant)
        # No database connection is held while the provider answers.
        await session.commit()
        await checkup.check(resources, connection.id, min_age_s=CHECK_NOW_MIN_AGE_S)
        await session.refresh(connection)
        last_event_at = await InboundEventRepository.from_session(session).last_received_at(
            connection.id, connection.provider
        )
        return webhook_health(connection, last_event_at, lang)

    async def _held_back(
        self,
        session: AsyncSession,
        repo: SyncRepository,
        run: SyncRun | None,
        connection_id: int,
        lang: str,
        label: str = "",
    ) -> list[HeldBack]:
        if run is None:
            return []
        items: list[HeldBack] = []
        for kind in reasons.HELD_BACK_KINDS:
            by_code = await repo.problem_reasons(run.id, kind)
            for code in sorted(by_code):
                if code in reasons.HELD_BACK_CODES:
                    params = {"provider": label, "when": ""}
                    text = reasons.render_reason(lang, kind, code, params, "")
                    items.append(HeldBack(reason_code=code, reason=text, count=by_code[code]))
        if run.warning and run.status == SyncRunStatus.completed:
            stale = await ContactRepository.from_session(session).count_stale(connection_id, run.id)
            if stale:
                items.append(
                    HeldBack(
                        reason_code="safety_valve",
                        reason=render_stored(lang, run.warning) or "",
                        count=stale,
                    )
                )
        return items


# The provider's live count per (connection, list), in the process's parts
# (`SharedParts.live_counts`). A status page polled by many browsers costs one provider call per
# connection and LIVE_COUNT_TTL_S.
LIVE_COUNT_TTL_S = 30.0


async def live_count(
    resources: Resources, connection: Connection, lang: str, version: object = None
) -> tuple[int | None, str | None]:
    """(count, None), cached for LIVE_COUNT_TTL_S per connection, list and `version` (the
    latest run and its status), or (None, why it is unknown)."""
    if not connection.list_id:
        return None, None
    # With its creation time: a connection id seen again (a database created anew) is another
    # connection.
    key = (connection.id, connection.created_at, connection.list_id, version)
    cache = resources.parts.live_counts
    cached = cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < LIVE_COUNT_TTL_S:
        return cached[1], None
    try:
        provider = provider_for_connection(resources, connection)
        # Subscribed contacts only (not unsubscribed, cleaned or archived list members).
        count = await asyncio.wait_for(
            provider.count_subscribed(connection.list_id), LIVE_COUNT_TIMEOUT_S
        )
    except (ProviderError, TimeoutError) as exc:
        return None, getattr(exc, "message", None) or t(lang, "ui.s_provider_timeout")
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (time.monotonic(), count)
    return count, None


async def access_state(
    session: AsyncSession, resources: Resources, connection: Connection, lang: str
) -> OnOfficeAccessState:
    recheck_s = resources.settings.ONOFFICE_ACCESS_RECHECK_S
    refused = await OnOfficeAccessRepository.from_session(session).get(connection.id)
    if refused is None:
        return OnOfficeAccessState(
            state="ok", text=t(lang, "ui.s_onoffice_access_ok"), recheck_s=recheck_s
        )
    since = aware(refused.refused_at)
    text = t(
        lang,
        "ui.s_onoffice_refused",
        time=f"{since:%Y-%m-%d %H:%M} UTC",
        why=refused.reason or str(refused.errorcode or ""),
        provider=PROVIDER_LABELS.get(connection.provider, connection.provider),
        minutes=max(1, round(recheck_s / 60)),
    )
    return OnOfficeAccessState(
        state="refused",
        text=text,
        refused_at=since,
        checked_at=aware(refused.checked_at),
        errorcode=refused.errorcode,
        reason=refused.reason,
        recheck_s=recheck_s,
    )


status = StatusService()
