"""Held provider events: a burst of archives/deletes (Mailchimp "Archive All") waits for a user."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.connections.service import connection as connection_service
from app.db.base import utcnow
from app.db.models import InboundEventStatus
from app.deps import SessionDep
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.tenants.auth import CurrentTenant, TenantContext
from app.webhooks.jobs import apply_job_id
from app.webhooks.repository import InboundEventRepository
from app.worker.queue import enqueue_job

router = APIRouter(
    prefix="/api/v1/held-events",
    tags=["provider webhooks"],
    responses=BEARER_RESPONSES | NO_CONNECTION,
)


class HeldDecision(BaseModel):
    decision: Literal["apply", "dismiss"]
    events: int = Field(description="How many held events the decision covered")


async def decide(session: AsyncSession, tenant: TenantContext, *, apply: bool) -> int:
    """Apply (each removal is confirmed at the provider before onOffice changes) or dismiss
    (onOffice keeps its values) the held burst."""
    connection = await connection_service.get(session, tenant)
    repo = InboundEventRepository.from_session(session)
    held = await repo.pending_removals(connection.id, InboundEventStatus.held)
    if apply:
        for event in held:
            await repo.release(event)
        if held:
            enqueue_job(
                "webhooks.apply",
                _job_id=f"{apply_job_id(connection.id)}:release:{time.time_ns()}",
                connection_id=connection.id,
            )
    else:
        await repo.set_status(
            [e.id for e in held],
            InboundEventStatus.ignored,
            last_error="dismissed by a user (held burst of archives/deletes)",
            applied_at=utcnow(),
        )
    return len(held)


@router.post(
    "/apply",
    response_model=HeldDecision,
    summary="Apply a held burst of archives/deletes (each confirmed at the provider first)",
)
async def apply_held(tenant: CurrentTenant, session: SessionDep) -> HeldDecision:
    return HeldDecision(decision="apply", events=await decide(session, tenant, apply=True))


@router.post(
    "/dismiss",
    response_model=HeldDecision,
    summary="Dismiss a held burst of archives/deletes (onOffice stays as it is)",
)
async def dismiss_held(tenant: CurrentTenant, session: SessionDep) -> HeldDecision:
    return HeldDecision(decision="dismiss", events=await decide(session, tenant, apply=False))
