"""Request and response bodies of the tenants routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every JSON error of the service (rendered by app.errors)."""

    error: str = Field(examples=["invalid_signed_url"])
    message: str = Field(examples=["the signed URL has expired (older than 300 s)"])


class SessionCreate(BaseModel):
    query: str = Field(
        description="The query string of the signed onOffice iframe URL (`/onoffice/app?...`), "
        "exactly as received, with or without the leading `?`.",
        examples=["apiClaim=...&customerName=Muster&customerWebId=123&timestamp=...&signature=..."],
        max_length=8192,
    )


class SessionToken(BaseModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime


class SessionInfo(BaseModel):
    tenant_id: int
    customer_web_id: str
    customer_name: str
    group_id: str = Field(description='The onOffice groupId, "" when the user is in no group.')
    user_id: str


class WebhookAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    duplicate: bool = Field(
        default=False,
        description="True when this signed URL was delivered before; it was not stored again.",
    )
