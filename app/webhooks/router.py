"""Provider webhook endpoints, one pair per provider from its `WebhookDelivery`: the URL token is
checked first (and the bearer secret where the provider sends one), then the bounded body is
read, parsed and stored before the answer goes out."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from app.config import Settings
from app.connections.factory import provider_label, webhook_deliveries
from app.db.models import Connection
from app.errors import AppError
from app.inbox.writer import StaleConnection
from app.quotas import TokenBuckets
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
from providers.base import ProviderEvent, WebhookDelivery

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["provider webhooks"])


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
    except (AppError, HTTPException):  # the sender's fault (HTTPException: body over the cap)
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


def _payload(delivery: WebhookDelivery, body: bytes, settings: Settings) -> object:
    """The parsed body: form pairs, or one JSON value (an array of at most WEBHOOK_MAX_EVENTS)."""
    if delivery.body == "form":
        return parse_form(body)
    payload = parse_json(body, max_depth=settings.WEBHOOK_MAX_JSON_DEPTH)
    if isinstance(payload, list) and len(payload) > settings.WEBHOOK_MAX_EVENTS:
        raise PayloadTooLarge(
            f"{len(payload)} events in one delivery; at most {settings.WEBHOOK_MAX_EVENTS}"
        )
    return payload


def _within_quota(request: Request, connection_id: int, retry_status: int) -> None:
    """A connection's deliveries above WEBHOOK_RATE_PER_CONNECTION (and its burst) are asked
    to come again (the provider's "deliver again" status, with Retry-After), so one flooded
    webhook address cannot take the writer from every other tenant."""
    buckets: TokenBuckets | None = getattr(request.app.state, "webhook_buckets", None)
    wait = buckets.take(connection_id) if buckets is not None else 0.0
    if wait:
        error = RetryLater(
            "too many deliveries; please deliver again later", status_code=retry_status
        )
        error.headers = {"Retry-After": str(max(1, math.ceil(wait)))}
        raise error


def _bounded(events: list[ProviderEvent], settings: Settings) -> list[ProviderEvent]:
    """WEBHOOK_MAX_EVENTS counts events as parsed, not only the array's items (one item may
    name several lists)."""
    if len(events) > settings.WEBHOOK_MAX_EVENTS:
        raise PayloadTooLarge(
            f"{len(events)} events in one delivery; at most {settings.WEBHOOK_MAX_EVENTS}"
        )
    return events


async def _url_check(token: str) -> dict[str, str]:
    # Answered for any token: the provider checks the URL before our transaction commits.
    return {"status": "ok"}


def _receiver(provider: str, delivery: WebhookDelivery) -> Callable[..., Awaitable[Response]]:
    """The POST endpoint of one provider's webhook: token (and bearer secret), bounded body,
    parse, group-committed store, then the answer."""

    async def receive(token: str, request: Request) -> Response:
        resources = _resources(request)
        settings = resources.settings
        authorization = request.headers.get("authorization")
        async with _stored_or_retry(provider, delivery.retry_status):
            connection = await webhook_service.cached_connection(resources, provider, token)
            if delivery.bearer_secret:
                webhook_service.check_bearer(connection, authorization)
            _within_quota(request, connection.id, delivery.retry_status)
            body = await read_body(request, settings.WEBHOOK_MAX_BODY_BYTES)
            if delivery.url_check and not body.strip():
                return _accepted(0)  # an empty POST may check the URL too
            require_content_type(request, delivery.content_type)
            payload = _payload(delivery, body, settings)
            try:
                events = _bounded(webhook_service.parse(connection, payload), settings)
                stored = await _store(resources, provider, connection, events)
            except StaleConnection:  # saved again since it was cached: token or secret may differ
                connection = await webhook_service.cached_connection(
                    resources, provider, token, fresh=True
                )
                if delivery.bearer_secret:
                    webhook_service.check_bearer(connection, authorization)
                events = _bounded(webhook_service.parse(connection, payload), settings)
                stored = await _store(resources, provider, connection, events)
        return _accepted(stored)

    return receive


BEARER_HEADER = {
    "in": "header",
    "name": "authorization",
    "required": True,
    "description": "`Bearer <secret>`: the secret registered with the webhook",
    "schema": {"type": "string"},
}


def _register(provider: str, delivery: WebhookDelivery) -> None:
    """The routes of one provider's webhook, `/webhooks/{provider}/{token}`."""
    label = provider_label(provider)
    path = f"/{provider}/{{token}}"
    if delivery.url_check:
        router.add_api_route(
            path,
            _url_check,
            methods=["GET"],
            name=f"{provider}_check",
            summary=f"{label}'s URL check when the webhook is created",
            response_model=dict[str, str],
        )
    responses = {
        **COMMON_ERRORS,
        delivery.retry_status: _error(
            f"The events could not be stored; {label} delivers them again"
        ),
    }
    if delivery.bearer_secret:
        responses[401] = _error("Bearer secret missing or wrong")
    extra: dict[str, Any] = {
        "requestBody": {
            "required": delivery.body_required,
            "content": {delivery.content_type: {"schema": dict(delivery.body_schema)}},
        }
    }
    if delivery.bearer_secret:
        extra["parameters"] = [BEARER_HEADER]
    router.add_api_route(
        path,
        _receiver(provider, delivery),
        methods=["POST"],
        name=f"{provider}_events",
        response_model=Accepted,
        summary=delivery.summary or f"{label} events, stored before they are acknowledged",
        description=delivery.description or None,
        responses=responses,
        openapi_extra=extra,
    )


for _provider, _delivery in webhook_deliveries().items():
    _register(_provider, _delivery)
