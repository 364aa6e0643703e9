from __future__ import annotations

import time

from fastapi import APIRouter, status
from pydantic import BaseModel

from app.connections.service import connection as connection_service
from app.deps import SessionDep
from app.openapi import BEARER_RESPONSES
from app.tenants.auth import CurrentTenant
from app.worker.queue import enqueue_job

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
    enqueue_job(
        "incremental.poll",
        _job_id=f"incremental.poll:{connection.id}:now:{time.time_ns()}",
        connection_id=connection.id,
    )
    return PollQueued()
