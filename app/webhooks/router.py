"""Provider webhook endpoints: the URL token is checked first (and Brevo's bearer secret), then
the bounded body is read, parsed and stored before the answer goes out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel

from app.db.models import Connection
from app.errors import AppError
from app.resources import Resources
from app.tenants.schemas import ErrorBody
from app.webhooks.intake import (
    PayloadTooLarge,
    parse_form,
    parse_json,
    read_body,
    require_content_type,
)
from app.webhooks.service import webhook as webhook_service
from app.webhooks.writer import StaleConnection
from providers.base import ProviderEvent

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["provider webhooks"])

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


class Accepted(BaseModel):
    status: str = "accepted"
    stored: int


class RetryLater(AppError):
    """The event could not be stored: ask the provider to deliver it again."""

    def __init__(self, message: str, *, status_code: int) -> None:
        super().__init__(message, status_code=status_code)
        self.code = "retry_later"
        self.headers = {"Retry-After": "60"}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed payload (not UTF-8, not parseable, nested too deep, no usable event)"),
    404: _error("Unknown webhook token"),
    413: _error("Body larger than WEBHOOK_MAX_BODY_BYTES, or more than WEBHOOK_MAX_EVENTS events"),
    415: _error("Wrong content type"),
}


@asynccontextmanager
async def _stored_or_retry(source: str, status_code: int) -> AsyncIterator[None]:
    """Any failure that is not the sender's fault (database down, ...) becomes `status_code`,
    which makes the provider deliver again instead of dropping the event."""
    try:
        yield
    except AppError:
        raise
    except Exception as exc:
        log.error("webhook.not_stored", extra={"source": source}, exc_info=exc)
        raise RetryLater(
            "the event could not be stored right now; please deliver it again later",
            status_code=status_code,
        ) from exc


def _resources(request: Request) -> Resources:
    # Not a FastAPI dependency: a plain function dependency would run in the thread pool.
    resources: Resources = request.app.state.resources
    return resources


def _accepted(stored: int) -> Response:
    """`Accepted` written directly (the response model documents it; no validation pass)."""
    return Response(b'{"status":"accepted","stored":%d}' % stored, media_type="application/json")


async def _store(
    resources: Resources, source: str, connection: Connection, events: list[ProviderEvent]
) -> int:
    """The group-committed INSERT before the answer; the drain is kicked after the commit.
    `StaleConnection` when the cached connection changed meanwhile."""
    return await webhook_service.store(resources, source, connection, events, kick=True)


@router.get(
    "/mailchimp/{token}",
    summary="Mailchimp's URL check when the webhook is created",
    response_model=dict[str, str],
)
async def mailchimp_check(token: str) -> dict[str, str]:
    # Answered for any token: Mailchimp checks the URL before our transaction commits.
    return {"status": "ok"}


@router.post(
    "/mailchimp/{token}",
    response_model=Accepted,
    summary="Mailchimp events (form-encoded `data[...]`), stored before they are acknowledged",
    responses={
        **COMMON_ERRORS,
        503: _error("The event could not be stored; Mailchimp delivers it again"),
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {FORM: {"schema": {"type": "object", "additionalProperties": True}}},
        }
    },
)
async def mailchimp_events(token: str, request: Request) -> Response:
    resources = _resources(request)
    async with _stored_or_retry("mailchimp", 503):
        connection = await webhook_service.cached_connection(resources, "mailchimp", token)
        body = await read_body(request, resources.settings.WEBHOOK_MAX_BODY_BYTES)
        if not body.strip():
            return _accepted(0)  # Mailchimp may POST an empty body to check the URL
        require_content_type(request, FORM)
        events = webhook_service.parse_mailchimp(parse_form(body))
        try:
            stored = await _store(resources, "mailchimp", connection, events)
        except StaleConnection:  # saved again since it was cached: the token may be gone
            connection = await webhook_service.cached_connection(
                resources, "mailchimp", token, fresh=True
            )
            stored = await _store(resources, "mailchimp", connection, events)
    return _accepted(stored)


@router.post(
    "/brevo/{token}",
    response_model=Accepted,
    summary="Brevo events (one JSON event or an array), stored before they are acknowledged",
    description="Needs `Authorization: Bearer <secret>` with the secret registered in the "
    "Brevo webhook (not the URL token). When the events cannot be stored the answer is 429, "
    "the only error after which Brevo delivers again.",
    responses={
        **COMMON_ERRORS,
        401: _error("Bearer secret missing or wrong"),
        429: _error("The events could not be stored; Brevo delivers them again"),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {
                    "schema": {
                        "oneOf": [
                            {"type": "object"},
                            {"type": "array", "items": {"type": "object"}},
                        ]
                    }
                }
            },
        }
    },
)
async def brevo_events(
    token: str,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    resources = _resources(request)
    settings = resources.settings
    async with _stored_or_retry("brevo", 429):
        connection = await webhook_service.cached_connection(resources, "brevo", token)
        webhook_service.check_brevo_bearer(connection, authorization)
        require_content_type(request, JSON)
        body = parse_json(
            await read_body(request, settings.WEBHOOK_MAX_BODY_BYTES),
            max_depth=settings.WEBHOOK_MAX_JSON_DEPTH,
        )
        if isinstance(body, list) and len(body) > settings.WEBHOOK_MAX_EVENTS:
            raise PayloadTooLarge(
                f"{len(body)} events in one delivery; at most {settings.WEBHOOK_MAX_EVENTS}"
            )
        try:
            events = webhook_service.parse_brevo(connection, body)
            stored = await _store(resources, "brevo", connection, events)
        except StaleConnection:  # saved again since it was cached: token or secret may differ
            connection = await webhook_service.cached_connection(
                resources, "brevo", token, fresh=True
            )
            webhook_service.check_brevo_bearer(connection, authorization)
            events = webhook_service.parse_brevo(connection, body)
            stored = await _store(resources, "brevo", connection, events)
    return _accepted(stored)
