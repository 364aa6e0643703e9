from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from app.deps import ResourcesDep, SessionDep
from app.errors import request_language
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.preview.schemas import PreviewItemPage, PreviewRead
from app.preview.service import preview as preview_service
from app.tenants.auth import CurrentTenant

router = APIRouter(
    prefix="/api/v1/previews", tags=["sync"], responses=BEARER_RESPONSES | NO_CONNECTION
)

MAX_ID = 2**63 - 1
PreviewId = Annotated[int, Path(ge=1, le=MAX_ID, description="id of the preview")]


@router.get(
    "/latest",
    response_model=PreviewRead | None,
    summary="The connection's newest preview (null when there is none)",
)
async def latest_preview(
    request: Request, tenant: CurrentTenant, session: SessionDep
) -> PreviewRead | None:
    found = await preview_service.latest(session, tenant)
    return preview_service.to_read(found, request_language(request)) if found else None


@router.get(
    "/{preview_id}",
    response_model=PreviewRead,
    summary="A preview's status and counts (POST /api/v1/syncs with dry_run starts one)",
    responses={404: {"description": "Unknown preview"}},
)
async def get_preview(
    request: Request, preview_id: PreviewId, tenant: CurrentTenant, session: SessionDep
) -> PreviewRead:
    found = await preview_service.get(session, tenant, preview_id)
    return preview_service.to_read(found, request_language(request))


@router.get(
    "/{preview_id}/items",
    response_model=PreviewItemPage,
    summary="What a run would do with each address (JSON pages or CSV)",
    description="Filter by `outcome` (created, updated, unchanged, a problem kind, or "
    "`written_back` for the addresses onOffice would be written to) and search by email "
    "substring or address id; page with `after` (cursor) or `offset`.",
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with ?format=csv"},
        404: {"description": "Unknown preview"},
    },
)
async def preview_items(
    request: Request,
    preview_id: PreviewId,
    tenant: CurrentTenant,
    session: SessionDep,
    resources: ResourcesDep,
    format: Literal["json", "csv"] = Query("json"),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor from `next_cursor`"),
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=MAX_ID, description="rows to skip (page numbers)"),
    outcome: str | None = Query(None, max_length=32, description="only this outcome"),
    q: str | None = Query(None, max_length=320, description="email substring or address id"),
) -> PreviewItemPage | StreamingResponse:
    lang = request_language(request)
    if format == "csv":
        await preview_service.get(session, tenant, preview_id)  # 404 before streaming starts
        return StreamingResponse(
            preview_service.items_csv(
                resources, tenant, preview_id, outcome=outcome or None, search=q, lang=lang
            ),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="preview-{preview_id}.csv"'},
        )
    return await preview_service.items(
        session,
        tenant,
        preview_id,
        after=after,
        limit=limit,
        offset=offset,
        outcome=outcome or None,
        search=q,
        lang=lang,
    )
