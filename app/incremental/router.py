from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from app.connections.service import connection as connection_service
from app.deps import SessionDep
from app.incremental.jobs import enqueue_poll
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
    connection = await connection_service.get(session, tenant)
    enqueue_poll(connection.id, now=True)
    return PollQueued()
