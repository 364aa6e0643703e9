from __future__ import annotations

from fastapi import APIRouter, Query, Request, status

from app.connections.schemas import ConnectionRead, ConnectionUpdate
from app.connections.service import connection as connection_service
from app.deps import ResourcesDep, SessionDep
from app.errors import request_language
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.status.schemas import WebhookHealth
from app.status.service import status as status_service
from app.tenants.auth import CurrentTenant

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
    "/webhook/rotate",
    response_model=ConnectionRead,
    summary="A new secret webhook address: registered at the provider, the old one removed "
    "there and refused from now on (no grace period)",
    responses=ERRORS,
)
async def rotate_webhook(
    tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> ConnectionRead:
    conn = await connection_service.rotate_webhook(session, resources, tenant)
    return connection_service.to_read(resources, conn)


@router.post(
    "/webhook/check",
    response_model=WebhookHealth,
    summary="Check the provider webhook now (and repair drift), as the periodic check does",
    responses=ERRORS,
)
async def check_webhook(
    request: Request, tenant: CurrentTenant, session: SessionDep, resources: ResourcesDep
) -> WebhookHealth:
    return await status_service.check_webhook(session, resources, tenant, request_language(request))
