from __future__ import annotations

from fastapi import APIRouter, Query, Request, status

from app.connections.schemas import ConnectionRead, ConnectionUpdate
from app.connections.service import connection as connection_service
from app.deps import ResourcesDep, SessionDep
from app.errors import request_language
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.status.schemas import WebhookHealth
from app.status.webhook import webhook_health
from app.tenants.auth import CurrentTenant
from app.webhooks import checkup
from app.webhooks.repository import InboundEventRepository

# A user's check within this many seconds of the last one answers with that one's result.
CHECK_NOW_MIN_AGE_S = 10

router = APIRouter(
    prefix="/api/v1/connection", tags=["connection"], responses=BEARER_RESPONSES | NO_CONNECTION
)

ERRORS: dict[int | str, dict[str, str]] = {
    400: {"description": "The provider rejected the API key (message says why)"},
    401: {"description": "Missing or invalid session token"},
    409: {"description": "An account limit blocks the setup (e.g. Mailchimp free plan)"},
    502: {"description": "The provider refused a request"},
    503: {"description": "The provider is down; `details.status_page` links its status page"},
}


@router.get("", response_model=ConnectionRead, summary="The saved connection (key masked)")
async def get_connection(
    tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> ConnectionRead:
    conn = await connection_service.get(session, tenant)
    return connection_service.to_read(resources, conn)


@router.put(
    "",
    response_model=ConnectionRead,
    summary="Save a provider key: checks it, prepares the list `onoffice`, fields and webhook",
    responses=ERRORS,
)
async def put_connection(
    data: ConnectionUpdate, tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> ConnectionRead:
    conn = await connection_service.save(session, resources, tenant, data)
    return connection_service.to_read(resources, conn)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disconnect: removes the provider webhook and forgets the key",
    responses=ERRORS,
)
async def delete_connection(
    tenant: CurrentTenant,
    session: SessionDep,
    resources: ResourcesDep,
    force: bool = Query(False, description="Delete locally even if the provider is unreachable"),
) -> None:
    await connection_service.delete(session, resources, tenant, force=force)


@router.post(
    "/webhook/check",
    response_model=WebhookHealth,
    summary="Check the provider webhook now (and repair drift), as the periodic check does",
    responses=ERRORS,
)
async def check_webhook(
    request: Request, tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> WebhookHealth:
    conn = await connection_service.get(session, tenant)
    # No database connection is held while the provider answers.
    await session.commit()
    await checkup.check(resources, conn.id, min_age_s=CHECK_NOW_MIN_AGE_S)
    await session.refresh(conn)
    last_event_at = await InboundEventRepository.from_session(session).last_received_at(
        conn.id, conn.provider
    )
    return webhook_health(conn, last_event_at, request_language(request))
