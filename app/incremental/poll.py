"""Incremental sync, trigger 2: polling onOffice by modification time (`Aenderung`).

Every ONOFFICE_POLL_INTERVAL_S per connection (the safety net beside the webhook); the
watermark moves to the poll's start once every changed address was pushed. The scheduler also
restarts the webhook drain when events wait.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from app.connections.access import check_access, recheck_due
from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.db.base import aware, utcnow
from app.inbox import owner
from app.inbox.jobs import Stream
from app.inbox.repository import InboundEventRepository
from app.incremental.jobs import enqueue_poll
from app.incremental.push import PushStats, push_addresses
from app.resources import Resources
from app.syncs.repository import SyncRepository
from app.worker.context import retry_or_fail
from app.worker.locks import exclusive
from onoffice_client.models import OnOfficeAccessLost, OnOfficeTransientError
from providers.base import ProviderTransientError


async def poll(
    resources: Resources, connection_id: int, *, job_try: int = 1, max_tries: int = 10
) -> PushStats:
    """Push every address changed since the connection's watermark (one poll at a time per
    connection: a poll that finds another one running leaves the work to it)."""
    async with exclusive(resources, f"poll:{connection_id}") as acquired:
        if not acquired:
            return PushStats()
        return await _poll(resources, connection_id, job_try=job_try, max_tries=max_tries)


async def _poll(
    resources: Resources, connection_id: int, *, job_try: int, max_tries: int
) -> PushStats:
    stats = PushStats()
    async with resources.sessionmaker() as session:  # one read session for what decides
        connection, tenant = await ConnectionRepository.from_session(session).with_tenant(
            connection_id
        )
        if connection is None or tenant is None or not connection.list_id:
            return stats
        refused = await OnOfficeAccessRepository.from_session(session).get(connection_id)
        runs = SyncRepository.from_session(session)
        if await runs.active_run(connection_id) is not None:
            return stats  # the full sync covers these changes
        since = connection.onoffice_watermark
        if since is None and (last := await runs.latest_completed_run(connection_id)):
            # The first poll after a full sync: that run brought everything before it began,
            # not what changed since (e.g. after a reconnect).
            since = last.started_at
    started = utcnow()
    onoffice = onoffice_for_connection(resources, tenant, connection)
    if refused is not None:
        # onOffice refuses the access (app/connections/access.py): only the re-check, and the
        # poll goes on once onOffice answers again.
        interval = resources.settings.ONOFFICE_ACCESS_RECHECK_S
        if not recheck_due(refused.checked_at, started, interval):
            return stats
        if not await check_access(resources, connection_id, onoffice):
            return stats
    if since is None:
        # The first poll with no full sync yet only sets the cursor (the first run syncs all).
        await _set_watermark(resources, connection_id, started)
        return stats
    since = aware(since)
    provider = provider_for_connection(resources, connection)
    try:
        async for page in onoffice.iter_changed_addresses(since, overlap=timedelta(minutes=10)):
            page_stats = await push_addresses(resources, provider, connection, page, onoffice)
            for name, value in page_stats.__dict__.items():
                setattr(stats, name, getattr(stats, name) + value)
    except (ProviderTransientError, OnOfficeTransientError) as exc:
        retry_or_fail(exc, transient=True, job_try=job_try, max_tries=max_tries, cap=120)
        raise
    except OnOfficeAccessLost:
        return stats  # recorded (app/connections/access.py); the watermark stays
    await _set_watermark(resources, connection_id, started)
    return stats


async def _set_watermark(resources: Resources, connection_id: int, value: Any) -> None:
    async with resources.transaction() as session:
        await ConnectionRepository.from_session(session).set_watermark(connection_id, value)


async def schedule(resources: Resources) -> int:
    """Enqueue a poll for every connection whose interval has passed, and kick the event drain
    of every connection with pending "address saved" events (lost kicks, retries)."""
    interval = timedelta(seconds=resources.settings.ONOFFICE_POLL_INTERVAL_S)
    now = utcnow()
    due = 0
    recheck_s = resources.settings.ONOFFICE_ACCESS_RECHECK_S
    async with resources.transaction() as session:
        connections = await ConnectionRepository.from_session(session).with_list()
        refused = await OnOfficeAccessRepository.from_session(session).refused()
        for connection in connections:
            if connection.id in refused:
                # onOffice refuses the access: a poll only to check it again.
                if recheck_due(refused[connection.id], now, recheck_s):
                    enqueue_poll(connection.id)
                    due += 1
                continue
            mark = aware(connection.onoffice_watermark)
            if mark is None or now - mark >= interval:
                enqueue_poll(connection.id)
                due += 1
        pending = await InboundEventRepository.from_session(session).connections_with_pending(
            Stream.onoffice
        )
    for connection_id in pending:
        await owner.kick(resources, connection_id, stream=Stream.onoffice)
    return due
