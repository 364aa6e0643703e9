"""Members archived or deleted at the provider: the list and the explicit restore
(`app.contacts.archive`)."""

from __future__ import annotations

from fastapi import APIRouter

from app.contacts.archive import ArchivedList, RestoreRequest, RestoreResult, list_archived, restore
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
    return await restore(session, resources, tenant, body.emails)
