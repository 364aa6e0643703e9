from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from app.deps import SessionDep
from app.incremental import service as incremental_service
from app.openapi import BEARER_RESPONSES
from app.tenants.auth import CurrentTenant

router = APIRouter(prefix="/api/v1/changes", tags=["sync"], responses=BEARER_RESPONSES)


class PollQueued(BaseModel):
    status: str = "queued"


@router.post(
    "/poll",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PollQueued,
    summary="Check onOffice for changed addresses now (otherwise every ONOFFICE_POLL_INTERVAL_S)",
    responses={404: {"description": "No provider connected yet"}},
)
async def poll_now(tenant: CurrentTenant, session: SessionDep) -> PollQueued:
    await incremental_service.request_poll(session, tenant)
    return PollQueued()
