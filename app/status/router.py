from __future__ import annotations

from fastapi import APIRouter, Request

from app.deps import ResourcesDep, SessionDep
from app.errors import request_language
from app.openapi import BEARER_RESPONSES
from app.status.schemas import Status
from app.status.service import status as status_service
from app.tenants.auth import CurrentTenant

router = APIRouter(prefix="/api/v1/status", tags=["status"], responses=BEARER_RESPONSES)


@router.get(
    "",
    response_model=Status,
    summary="Connection, counts on both sides, the latest synchronisation and pending work",
)
async def get_status(
    request: Request, tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> Status:
    return await status_service.get(session, resources, tenant, request_language(request))
