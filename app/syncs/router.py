from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from app.deps import ResourcesDep, SessionDep
from app.errors import request_language
from app.lifecycle.held import held_list
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.preview.service import preview as preview_service
from app.syncs.schemas import (
    HeldUnsubscribePage,
    HeldUnsubscribeRead,
    ProblemPage,
    SyncRunRead,
    SyncStart,
    SyncStarted,
)
from app.syncs.service import sync as sync_service
from app.tenants.auth import CurrentTenant

router = APIRouter(
    prefix="/api/v1/syncs", tags=["sync"], responses=BEARER_RESPONSES | NO_CONNECTION
)

MAX_ID = 2**63 - 1  # ids are BIGINT: larger values are a 422, not a database error
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="id of the synchronisation")]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncStarted,
    summary="Start a full synchronisation (onOffice is the master), or a preview of one",
    description="With `dry_run: true` nothing is written to onOffice or the provider: both "
    "sides are read and every address is decided as a run would; `id` is then the preview's "
    "(`GET /api/v1/previews/{id}` and `.../items`).",
    responses={
        404: {"description": "No provider connected yet"},
        409: {"description": "A synchronisation is already queued or running"},
    },
)
async def start_sync(
    tenant: CurrentTenant, session: SessionDep, body: SyncStart | None = None
) -> SyncStarted:
    force = bool(body and body.force)
    if body and body.dry_run:
        preview = await preview_service.start(session, tenant, force=force)
        path = f"/api/v1/previews/{preview.id}"
        return SyncStarted(id=preview.id, status=preview.status, dry_run=True, preview=path)
    run = await sync_service.start(session, tenant, force=force)
    return SyncStarted(id=run.id, status=run.status)


@router.get("", response_model=list[SyncRunRead], summary="The latest synchronisations")
async def list_syncs(
    request: Request, tenant: CurrentTenant, session: SessionDep
) -> list[SyncRunRead]:
    lang = request_language(request)
    return [
        sync_service.to_read(run, lang=lang) for run in await sync_service.list(session, tenant)
    ]


@router.get(
    "/{run_id}",
    response_model=SyncRunRead,
    summary="Status, live progress, timings and counts of one synchronisation",
    responses={404: {"description": "Unknown synchronisation"}},
)
async def get_sync(
    request: Request, run_id: RunId, tenant: CurrentTenant, session: SessionDep
) -> SyncRunRead:
    run = await sync_service.get(session, tenant, run_id)
    return sync_service.to_read(run, lang=request_language(request))


@router.post(
    "/{run_id}/approve-unsubscribes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SyncRunRead,
    summary="Carry out the unsubscribes the safety valve held back in this run",
    description="Exactly the contacts the run held back (listed by GET "
    "`.../held-unsubscribes`) are unsubscribed, unless onOffice changed one since; nothing "
    "else is sent again. Allowed for the newest run only.",
    responses={
        404: {"description": "Unknown synchronisation"},
        409: {"description": "Nothing held back, or a newer run exists"},
    },
)
async def approve_unsubscribes(
    request: Request, run_id: RunId, tenant: CurrentTenant, session: SessionDep
) -> SyncRunRead:
    run = await sync_service.approve_unsubscribes(session, tenant, run_id)
    return sync_service.to_read(run, lang=request_language(request))


@router.get(
    "/{run_id}/held-unsubscribes",
    response_model=HeldUnsubscribePage,
    summary="The contacts whose unsubscribe the safety valve held back in this run",
    description="Exactly the contacts an approval of this run unsubscribes (stored when the "
    "run held them; a contact subscribed later is never among them). Page with `after`.",
    responses={404: {"description": "Unknown synchronisation"}},
)
async def held_unsubscribes(
    run_id: RunId,
    tenant: CurrentTenant,
    session: SessionDep,
    resources: ResourcesDep,
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor from `next_cursor`"),
    limit: int = Query(500, ge=1, le=5000),
) -> HeldUnsubscribePage:
    run = await sync_service.get(session, tenant, run_id)
    rows, total = await held_list(resources, run.id, after=after, limit=limit)
    return HeldUnsubscribePage(
        items=[HeldUnsubscribeRead(email=r.email, address_id=r.address_id) for r in rows],
        total=total,
        next_cursor=rows[-1].id if len(rows) == limit else None,
    )


@router.post(
    "/{run_id}/cancel",
    response_model=SyncRunRead,
    summary="Stop a queued or running synchronisation",
    description="No further onOffice page is read and no further batch is sent; a batch "
    "already at the provider is recorded with its results. The run ends with status "
    "`cancelled`; a new synchronisation can start at once.",
    responses={
        404: {"description": "Unknown synchronisation"},
        409: {"description": "The synchronisation is not queued or running"},
    },
)
async def cancel_sync(
    request: Request, run_id: RunId, tenant: CurrentTenant, session: SessionDep
) -> SyncRunRead:
    run = await sync_service.cancel(session, tenant, run_id)
    return sync_service.to_read(run, lang=request_language(request))


@router.get(
    "/{run_id}/problems",
    response_model=ProblemPage,
    summary="Every address of the run that was not synced, and why (JSON pages or CSV)",
    description="Reasons come in the caller's language (the session's onOffice "
    "`UserLanguage`, else `Accept-Language`), with the provider's or validator's own text as "
    "`detail`. Filter by `kind` and search by email substring or address id; page with "
    "`after` (cursor) or `offset`.",
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with ?format=csv"}
    },
)
async def get_problems(
    request: Request,
    run_id: RunId,
    tenant: CurrentTenant,
    session: SessionDep,
    resources: ResourcesDep,
    format: Literal["json", "csv"] = Query("json"),
    after: int = Query(0, ge=0, le=MAX_ID, description="cursor from `next_cursor`"),
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=MAX_ID, description="rows to skip (page numbers)"),
    kind: str | None = Query(None, max_length=32, description="only problems of this kind"),
    q: str | None = Query(None, max_length=320, description="email substring or address id"),
) -> ProblemPage | StreamingResponse:
    lang = request_language(request)
    if format == "csv":
        await sync_service.get(session, tenant, run_id)  # 404 before streaming starts
        return StreamingResponse(
            sync_service.problems_csv(resources, tenant, run_id, lang=lang, kind=kind, search=q),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="sync-{run_id}-problems.csv"'},
        )
    return await sync_service.problems(
        session,
        tenant,
        run_id,
        after=after,
        limit=limit,
        offset=offset,
        kind=kind or None,
        search=q,
        lang=lang,
    )


# The provider's call when an asynchronous import is done (app/syncs/notices.py): no session;
# the unguessable notice id, registered for the connection, is the credential.
notice_router = APIRouter(prefix="/api/v1/syncs", tags=["sync"])
NoticeId = Annotated[
    str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="notice id")
]


NOTICE_ROUTE: dict[str, Any] = {
    "path": "/import-notices/{connection_id}/{notice_id}",
    "status_code": status.HTTP_204_NO_CONTENT,
    "summary": "The provider's notice that an import is done (its notifyUrl)",
    "description": "Passed as `notifyUrl` with each asynchronous import (Brevo's "
    "`POST /contacts/import`) when `IMPORT_NOTIFY` allows it. The body is ignored: the notice "
    "only wakes the waiting sync step, which reads the import's status once. 404 when the "
    "notice is unknown, expired (2 hours) or belongs to another connection. GET is accepted "
    "too (the method Brevo uses is not documented).",
    "responses": {404: {"description": "Unknown notice"}},
}


@notice_router.post(**NOTICE_ROUTE)
@notice_router.get(**NOTICE_ROUTE, operation_id="import_notice_get")
async def import_notice(
    connection_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    notice_id: NoticeId,
    resources: ResourcesDep,
) -> Response:
    if not await resources.parts.notices.mark(connection_id, notice_id):
        raise HTTPException(status_code=404, detail="Unknown notice")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
