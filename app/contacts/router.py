"""Members archived or deleted at the provider: the list and the explicit restore
(`app.contacts.archive`)."""

from __future__ import annotations

from fastapi import APIRouter

from app.connections.service import connection as connection_service
from app.contacts.archive import ArchivedList, RestoreRequest, RestoreResult, list_archived, restore
from app.decisions.service import recorded
from app.deps import ResourcesDep, SessionDep
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.tenants.auth import CurrentTenant

router = APIRouter(
    prefix="/api/v1/connection/archived",
    tags=["connection"],
    responses=BEARER_RESPONSES | NO_CONNECTION,
)


@router.get(
    "",
    response_model=ArchivedList,
    summary="Contacts archived or deleted at the provider while onOffice says Yes "
    "(neither re-added nor written back by a sync)",
)
async def get_archived(tenant: CurrentTenant, session: SessionDep) -> ArchivedList:
    return await list_archived(session, tenant)


@router.post(
    "/restore",
    response_model=RestoreResult,
    summary="Subscribe selected archived contacts again (only while onOffice still says Yes)",
)
async def restore_archived(
    body: RestoreRequest, tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> RestoreResult:
    result = await restore(session, resources, tenant, body.emails)
    # The user's decision, in each restored person's consent history (app.decisions).
    connection = await connection_service.get(session, tenant)
    await recorded(session, connection.id, tenant, "archived", "restore", result.restored)
    return result
