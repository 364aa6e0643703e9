"""`/api/v1/decisions/{kind}`: what waits for a user, person by person (paged, searchable,
CSV), and the decision for all or a selection."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.decisions.service import (
    DecisionPage,
    DecisionRequest,
    DecisionResult,
    Kind,
    decide,
    listing,
)
from app.deps import ResourcesDep, SessionDep
from app.errors import request_language
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.tenants.auth import CurrentTenant
from app.tenants.schemas import ErrorBody

router = APIRouter(
    prefix="/api/v1/decisions", tags=["decisions"], responses=BEARER_RESPONSES | NO_CONNECTION
)


@router.get(
    "/{kind}",
    response_model=DecisionPage,
    summary="What waits for a decision: held unsubscribes, held bursts, archived contacts, "
    "failed events",
    description="Person by person, in the caller's language; the provider's or onOffice's own "
    "message only as `original`. Search by email substring or address id (`q`), page with "
    "`offset`/`limit`, or `?format=csv`.",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV"}},
)
async def get_decisions(
    request: Request,
    kind: Kind,
    tenant: CurrentTenant,
    session: SessionDep,
    q: str | None = Query(None, max_length=320, description="email substring or address id"),
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(50, ge=1, le=5000),
    format: Literal["json", "csv"] = Query("json"),
) -> DecisionPage | StreamingResponse:
    lang = request_language(request)
    if format == "csv":
        page = await listing(session, tenant, kind, lang=lang, search=q, limit=None)
        return StreamingResponse(
            _csv(page),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
        )
    return await listing(session, tenant, kind, lang=lang, search=q, offset=offset, limit=limit)


def _csv(page: DecisionPage) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["email", "address_id", "since", "reason", "reason_code", "original"])
    for item in page.items:
        since = item.since.isoformat() if item.since else ""
        address = "" if item.address_id is None else item.address_id
        row = [item.email, address, since, item.reason, item.reason_code, item.original or ""]
        writer.writerow(row)
    yield buffer.getvalue()


@router.post(
    "/{kind}",
    response_model=DecisionResult,
    summary="Decide for all (no `emails`) or a selection: apply or dismiss held unsubscribes "
    "and held bursts, restore archived contacts, retry or dismiss failed events",
    description="Each decided person gets an entry in the consent history with the user's id. "
    "409 when the action does not fit the kind.",
    responses={409: {"model": ErrorBody, "description": "The action does not fit the kind"}},
)
async def post_decision(
    kind: Kind,
    body: DecisionRequest,
    tenant: CurrentTenant,
    session: SessionDep,
    resources: ResourcesDep,
) -> DecisionResult:
    return await decide(session, resources, tenant, kind, body)
