from __future__ import annotations

import json

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from app.deps import SessionDep
from app.errors import AppError
from app.webhooks.service import webhook as webhook_service

router = APIRouter(prefix="/webhooks", tags=["provider webhooks"])


class Accepted(BaseModel):
    status: str = "accepted"
    stored: int


@router.get("/mailchimp/{token}", summary="Mailchimp's URL check when the webhook is created")
async def mailchimp_check(token: str) -> dict[str, str]:
    # Answered for any token: Mailchimp checks the URL before our transaction commits.
    return {"status": "ok"}


@router.post(
    "/mailchimp/{token}",
    response_model=Accepted,
    summary="Mailchimp events (form-encoded `data[...]`), stored before they are acknowledged",
    responses={400: {"description": "Malformed payload"}, 404: {"description": "Unknown token"}},
)
async def mailchimp_events(token: str, request: Request, session: SessionDep) -> Accepted:
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return Accepted(stored=await webhook_service.receive_mailchimp(session, token, pairs))


@router.post(
    "/brevo/{token}",
    response_model=Accepted,
    summary="Brevo events (one JSON event or an array), stored before they are acknowledged",
    responses={
        400: {"description": "Malformed payload"},
        401: {"description": "Bearer token does not match"},
        404: {"description": "Unknown token"},
    },
)
async def brevo_events(
    token: str,
    request: Request,
    session: SessionDep,
    authorization: str | None = Header(default=None),
) -> Accepted:
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise AppError("malformed Brevo webhook: the body is not JSON", status_code=400) from exc
    stored = await webhook_service.receive_brevo(session, token, authorization, body)
    return Accepted(stored=stored)
