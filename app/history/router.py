"""`GET /api/v1/contacts?email=…`: why is this person (not) subscribed? (JSON or CSV)"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from app.deps import SessionDep
from app.errors import request_language
from app.history.service import PersonHistory, history_csv, person_history
from app.openapi import BEARER_RESPONSES, NO_CONNECTION
from app.tenants.auth import CurrentTenant

router = APIRouter(
    prefix="/api/v1/contacts", tags=["contacts"], responses=BEARER_RESPONSES | NO_CONNECTION
)


@router.get(
    "",
    response_model=PersonHistory,
    summary="Why is this person (not) subscribed? The current decision and its history",
    description="The person (an email with all its onOffice addresses) in the session's "
    "connection: the consent rule's current decision with the rule that made it, and every "
    "consent signal, action and user decision recorded for the email, oldest first (texts in "
    "the caller's language). `?format=csv` exports it (proof of consent).",
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV"}},
)
async def get_contact(
    request: Request,
    tenant: CurrentTenant,
    session: SessionDep,
    email: str = Query(min_length=3, max_length=320, description="the person's email"),
    format: Literal["json", "csv"] = Query("json"),
) -> PersonHistory | StreamingResponse:
    person = await person_history(session, tenant, email, lang=request_language(request))
    if format == "csv":
        return StreamingResponse(
            history_csv(person),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="consent-history.csv"'},
        )
    return person
