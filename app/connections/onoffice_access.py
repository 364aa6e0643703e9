"""The onOffice client of a connection: its group's claim and its address scope.

A group's connection runs every onOffice call with the latest claim of a user of that group
(`group_claim`), never another group's or the customer-wide one; without one it waits
(`GroupClaimMissing`, an `OnOfficeClaimError`: jobs retry, the status says which group must
open the connector). The customer-wide connection (no group) runs with the tenant's claim, as
before. Both are loaded, and the scope's group members read (`get groups`, `read user`), on the
client's first call, so every job meets a missing claim where it already handles onOffice's own
claim errors.
"""

from __future__ import annotations

import time
from typing import Any

from app.contacts.scope import address_scope, scope_definition
from app.db.models import Connection, Tenant
from app.errors import TenantNotActivated
from app.resources import Resources
from app.tenants.repository import GroupClaimRepository
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import OnOfficeClaimError, OnOfficeError
from onoffice_client.scope import Group, User, read_groups, read_users

# A group's members are read again after this long (a user moved between groups).
MEMBERS_TTL_S = 300.0


class GroupClaimMissing(OnOfficeClaimError):
    """No user of the connection's group has opened the connector yet; `message` is the group
    id (the UI says: a user of group … must open the connector)."""


def _client(resources: Resources, tenant: Tenant, claim: str | None) -> OnOfficeClient:
    if tenant.api_token_encrypted is None or tenant.api_secret_encrypted is None:
        raise TenantNotActivated(
            "this onOffice customer has not activated the connector in the marketplace yet",
            status_code=409,
        )
    return OnOfficeClient(
        api_url=resources.settings.ONOFFICE_API_URL,
        token=resources.secret_box.decrypt(tenant.api_token_encrypted),
        secret=resources.secret_box.decrypt(tenant.api_secret_encrypted),
        claim=claim,
        http=resources.http,
        page_size=resources.settings.ONOFFICE_PAGE_SIZE,
    )


def onoffice_for_connection(
    resources: Resources, tenant: Tenant, connection: Connection
) -> OnOfficeClient:
    """The connection's onOffice client: its group's claim, its address scope. When onOffice
    refuses the API user as such, the connection's onOffice jobs stop
    (app/connections/access.py)."""
    client = _client(resources, tenant, tenant.api_claim if not connection.group_id else None)
    connection_id = connection.id

    async def refused(exc: OnOfficeError) -> None:
        from app.connections.access import record_refused  # imports this module's neighbours

        await record_refused(resources, connection_id, exc)

    client.on_access_lost = refused
    definition = scope_definition(connection.group_id, connection.scope)
    if not connection.group_id and definition.kind == "customer":
        return client  # the customer-wide connection: nothing to load
    group_id, tenant_id = connection.group_id, tenant.id

    async def setup(target: Any) -> None:
        claim, user_id = tenant.api_claim, ""
        if group_id:
            async with resources.sessionmaker() as session:
                found = await GroupClaimRepository.from_session(session).get(tenant_id, group_id)
            if found is None:
                raise GroupClaimMissing(group_id)
            claim, user_id = found.claim, found.user_id
        target.use_claim(claim)
        group: Group | None = None
        users: list[User] = []
        if definition.needs_group:
            group, users = await _members(resources, tenant, group_id, claim)
        target.use_scope(address_scope(definition, group=group, users=users, claim_user_id=user_id))

    client.setup = setup
    return client


async def _members(
    resources: Resources, tenant: Tenant, group_id: str, claim: str | None
) -> tuple[Group, list[User]]:
    """The group and its users, read with the group's claim; kept MEMBERS_TTL_S per process."""
    cache = resources.parts.group_members
    key = (tenant.id, group_id, claim)
    found = cache.get(key)
    if found is not None and time.monotonic() - found[0] < MEMBERS_TTL_S:
        return found[1], found[2]
    reader = _client(resources, tenant, claim)  # sends directly, not through the setup
    groups = {g.id: g for g in await read_groups(reader)}
    group = groups.get(group_id) or Group(id=group_id, name="", user_ids=())
    users = await read_users(reader, group.user_ids)
    if len(cache) > 1000:
        cache.clear()
    cache[key] = (time.monotonic(), group, users)
    return group, users
