"""App factory: `uvicorn --factory app.main:create_app`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError

from app import __version__
from app.config import Settings, get_settings
from app.connections.router import router as connections_router
from app.errors import (
    AppError,
    app_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from app.health.router import router as health_router
from app.incremental.router import router as incremental_router
from app.logging import configure_logging
from app.metrics import HTTP_LATENCY, HTTP_REQUESTS
from app.resources import create_resources
from app.status.router import router as status_router
from app.syncs.router import notice_router
from app.syncs.router import router as syncs_router
from app.tenants.router import router as tenants_router
from app.ui.landing import DemoCustomer
from app.ui.landing import router as landing_router
from app.webhooks.held import router as held_router
from app.webhooks.router import router as webhooks_router
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
                await resources.aclose()

    app = FastAPI(
        title="onOffice Newsletter Connector",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.demo = demo
    app.add_exception_handler(AppError, app_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)

    @app.middleware("http")
    async def record_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(route).observe(time.perf_counter() - start)
        return response

    app.include_router(landing_router)
    app.include_router(health_router)
    app.include_router(tenants_router)
    app.include_router(connections_router)
    app.include_router(syncs_router)
    app.include_router(notice_router)
    app.include_router(incremental_router)
    app.include_router(status_router)
    app.include_router(webhooks_router)
    app.include_router(held_router)
    return app
