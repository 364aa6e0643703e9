"""App factory: `uvicorn --factory app.main:create_app`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.body_limit import BodyLimit
from app.config import Environment, Settings, get_settings
from app.connections.factory import webhook_deliveries
from app.connections.router import router as connections_router
from app.contacts.router import router as archived_router
from app.decisions.router import router as decisions_router
from app.errors import (
    AppError,
    app_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from app.health.router import router as health_router
from app.history.router import router as history_router
from app.incremental.router import router as incremental_router
from app.logging import configure_logging
from app.metrics import HTTP_LATENCY, HTTP_REQUESTS
from app.preview.router import router as preview_router
from app.privacy.router import router as privacy_router
from app.quotas import FairShare, InFlight, TokenBuckets
from app.resources import create_resources
from app.status.router import router as status_router
from app.syncs.router import notice_router
from app.syncs.router import router as syncs_router
from app.tenants.auth import session_tenant
from app.tenants.router import router as tenants_router
from app.ui.landing import DemoCustomer
from app.ui.landing import router as landing_router
from app.webhooks.held import router as held_router
from app.webhooks.router import router as webhooks_router
from app.webhooks.service import close_writer
from app.worker.registry import load_tasks
from app.worker.sweeper import embedded_sweeper

DESCRIPTION = """
Keeps onOffice enterprise addresses with Newsletter = Yes in sync with a Mailchimp audience or a
Brevo list named `onoffice`, in both directions.

* **Sessions**: exchange the signed onOffice iframe query for a bearer token
  (`POST /api/v1/sessions`), then call every `/api/v1` route with `Authorization: Bearer <token>`.
* **Connection**: `PUT /api/v1/connection` checks the provider key, prepares the list and webhook.
* **Sync**: `POST /api/v1/syncs` starts a full sync; follow it with `GET /api/v1/syncs/{id}`.
"""


class RecordMetrics:
    """Counts requests and observes their latency per route template. Plain ASGI: Starlette's
    BaseHTTPMiddleware (`@app.middleware`) runs every request through extra tasks and memory
    streams, a large share of a webhook delivery's CPU."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception that escapes the app is answered 500 outside us

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(route).observe(time.perf_counter() - start)


def create_app(
    settings: Settings | None = None,
    *,
    http: httpx.AsyncClient | None = None,
    demo: DemoCustomer | None = None,
) -> FastAPI:
    """The ASGI app. `demo` (set by `connector demo`) lets the landing page sign iframe links
    for the demo customer."""
    settings = settings or get_settings()
    load_tasks()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.LOG_LEVEL)
        resources = await create_resources(settings, http=http)
        app.state.resources = resources
        async with embedded_sweeper(resources):
            try:
                yield
            finally:
                await close_writer(resources)
                await resources.aclose()

    # Production serves no /docs or /redoc: FastAPI's pages load their scripts from a CDN.
    # /openapi.json stays (for clients and generators).
    production = Environment.production == settings.ENV
    app = FastAPI(
        title="onOffice Newsletter Connector",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None if production else "/docs",
        redoc_url=None if production else "/redoc",
    )
    app.state.demo = demo
    # Fairness per tenant at the edge (app/quotas.py), per API process.
    app.state.api_buckets = TokenBuckets(
        settings.API_RATE_PER_TENANT, settings.API_BURST_PER_TENANT
    )
    app.state.webhook_buckets = TokenBuckets(
        settings.WEBHOOK_RATE_PER_CONNECTION, settings.WEBHOOK_BURST_PER_CONNECTION
    )
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)

    app.add_middleware(
        BodyLimit,
        limits=[
            ("/webhooks/", settings.WEBHOOK_MAX_BODY_BYTES),
            ("/api/v1/sessions", settings.SESSION_MAX_BODY_BYTES),
            ("/api/v1/", settings.API_MAX_BODY_BYTES),
        ],
        default=settings.OTHER_MAX_BODY_BYTES,
    )
    app.add_middleware(
        FairShare,
        api=InFlight(settings.API_CONCURRENCY_PER_TENANT, settings.FAIR_SHARE_WAIT_S),
        webhooks=InFlight(settings.WEBHOOK_CONCURRENCY_PER_CONNECTION, settings.FAIR_SHARE_WAIT_S),
        retry_status={name: d.retry_status for name, d in webhook_deliveries().items()},
        tenant_of=session_tenant,
    )
    app.add_middleware(RecordMetrics)

    app.include_router(webhooks_router)
    app.include_router(landing_router)
    app.include_router(health_router)
    app.include_router(tenants_router)
    app.include_router(connections_router)
    app.include_router(syncs_router)
    app.include_router(preview_router)
    app.include_router(notice_router)
    app.include_router(incremental_router)
    app.include_router(status_router)
    app.include_router(held_router)
    app.include_router(privacy_router)
    app.include_router(archived_router)
    app.include_router(history_router)
    app.include_router(decisions_router)
    return app
