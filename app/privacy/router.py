"""The operator's erasure API: `POST /admin/v1/forget` (bearer ADMIN_TOKEN; 404 while unset).
Not for the iframe's users: an erasure request reaches the operator (the processor), who
acts for the customer (the controller)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from app.crypto import hash_token
from app.deps import ResourcesDep
from app.errors import AppError, NotFound, Unauthorized
from app.privacy.service import forget

router = APIRouter(prefix="/admin/v1", tags=["operator"])


class ForgetRequest(BaseModel):
    customer: str = Field(min_length=1, max_length=64, description="onOffice customerWebId")
    email: str = Field(min_length=3, max_length=320)
    delete_at_provider: bool = Field(
        False,
        description="also delete the contact at the customer's lists (Mailchimp: permanent "
        "delete, the address can never be imported again; Brevo: delete)",
    )


class ForgetResult(BaseModel):
    rows: dict[str, int]
    deleted_at_provider: int


@router.post(
    "/forget",
    response_model=ForgetResult,
    summary="Erase one person from every table of the connector for a customer",
    responses={401: {"description": "wrong ADMIN_TOKEN"}, 404: {"description": "off or unknown"}},
)
async def forget_person(
    body: ForgetRequest,
    resources: ResourcesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> ForgetResult:
    expected = resources.settings.ADMIN_TOKEN
    if expected is None or not expected.get_secret_value():
        raise NotFound("not found")
    scheme, _, credential = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        hash_token(credential.strip()), hash_token(expected.get_secret_value())
    ):
        raise Unauthorized("send `Authorization: Bearer <ADMIN_TOKEN>`")
    if "@" not in body.email:
        raise AppError("email must be an email address", status_code=422)
    result = await forget(
        resources, body.customer, body.email, delete_at_provider=body.delete_at_provider
    )
    if not result.found:
        raise NotFound(f"no onOffice customer {body.customer!r}")
    return ForgetResult(rows=result.rows, deleted_at_provider=result.deleted_at_provider)
