"""The connection's scope in the status: which addresses it covers, and how many, counted live
in onOffice with the connection's own client (its group's claim, its scope): every address of
the scope and the active ones with newsletter Yes. Not the latest run's figure (that counts
only what one run read). Cached per connection for SCOPE_COUNT_TTL_S; while a group waits for
its claim, or onOffice does not answer in time, the counts are unknown (None)."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.onoffice_access import onoffice_for_connection
from app.contacts.scope import scope_definition
from app.db.models import Connection, Tenant
from app.errors import TenantNotActivated
from app.i18n import t
from app.resources import Resources
from app.status.schemas import ScopeStatus
from app.tenants.repository import GroupClaimRepository, TenantRepository
from onoffice_client.client import NEWSLETTER_SUBSCRIBERS
from onoffice_client.models import OnOfficeError
from onoffice_client.scope import count_in_scope

log = logging.getLogger(__name__)

# Counting a scope onOffice cannot filter reads every page: counted at most this often.
SCOPE_COUNT_TTL_S = 300.0
SCOPE_COUNT_TIMEOUT_S = 10.0
FAILED_TTL_S = 60.0  # a count that failed is not tried again within this time
# The counts live in the process's parts (`SharedParts.scope_counts`, `.scope_counting`):
# (connection, its creation, its scope) -> (monotonic time, all addresses, newsletter Yes).


async def scope_status(
    session: AsyncSession, resources: Resources, connection: Connection, lang: str
) -> ScopeStatus:
    definition = scope_definition(connection.group_id, connection.scope)
    group = connection.group_id
    text = t(
        lang,
        f"ui.scope_{definition.kind}",
        group=group,
        field=definition.field,
        values=", ".join(definition.values),
    )
    waiting = None
    if (
        group
        and await GroupClaimRepository.from_session(session).get(connection.tenant_id, group)
        is None
    ):
        waiting = t(lang, "ui.scope_waiting", group=group)
    counts = None
    if waiting is None:
        tenant = await TenantRepository.from_session(session).get(connection.tenant_id)
        await session.commit()  # no database connection is held while onOffice answers
        if tenant is not None:
            counts = await scope_counts(resources, tenant, connection)
    return ScopeStatus(
        kind=definition.kind,
        text=text,
        addresses=counts[0] if counts else None,
        newsletter_addresses=counts[1] if counts else None,
        waiting=waiting,
    )


async def scope_counts(
    resources: Resources, tenant: Tenant, connection: Connection
) -> tuple[int, int] | None:
    """(every address of the connection's scope, the active ones with newsletter Yes), or None
    when onOffice did not tell."""
    # The creation time tells a connection saved anew (or another database's) from this one.
    cache, under_way = resources.parts.scope_counts, resources.parts.scope_counting
    if len(cache) > 10_000:
        cache.clear()
    key = (connection.id, str(connection.created_at), repr(connection.scope), connection.group_id)
    cached = cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < SCOPE_COUNT_TTL_S:
        return None if cached[1] < 0 else (cached[1], cached[2])
    # Status calls of one connection at the same time share one count (no stampede on onOffice).
    running = under_way.get(key)
    if running is None or running.done():
        running = asyncio.ensure_future(_count(resources, tenant, connection))
        under_way[key] = running
    try:
        every, yes = await asyncio.shield(running)
    except (OnOfficeError, TenantNotActivated, TimeoutError) as exc:
        log.info("status.scope_count_failed", extra={"connection_id": connection.id,
                                                     "error": str(exc)})  # fmt: skip
        # Not asked again for a while: a status page must not wait for a failing onOffice
        # on every refresh.
        cache[key] = (time.monotonic() - SCOPE_COUNT_TTL_S + FAILED_TTL_S, -1, -1)
        return None
    finally:
        if running.done():
            under_way.pop(key, None)
    cache[key] = (time.monotonic(), every, yes)
    return every, yes


async def _count(resources: Resources, tenant: Tenant, connection: Connection) -> tuple[int, int]:
    client = onoffice_for_connection(resources, tenant, connection)

    async def both() -> tuple[int, int]:
        every = await count_in_scope(client, {})
        return every, await count_in_scope(client, NEWSLETTER_SUBSCRIBERS)

    return await asyncio.wait_for(both(), SCOPE_COUNT_TIMEOUT_S)
