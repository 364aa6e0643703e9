"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.config import Environment
from app.crypto import hash_token
from app.deps import ResourcesDep
from app.errors import NotFound, Unauthorized
from app.health.gauges import refresh_gauges
from app.health.repository import ping_database
from app.tenants.schemas import ErrorBody

log = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_S = 3.0


@router.get("/healthz", summary="Process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and queue are reachable",
    responses={503: {"description": "A dependency is down; `failing` names it"}},
)
async def readyz(resources: ResourcesDep) -> JSONResponse:
    checks: dict[str, Any] = {}

    async def check_db() -> None:
        await ping_database(resources.engine)

    for name, probe in (("database", check_db), ("queue", resources.queue.ping)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            # The error's kind only: its text can carry hosts, ports and user names (public
            # route). The log has the whole error.
            log.warning("readyz.check_failed", extra={"check": name}, exc_info=exc)
            checks[name] = f"error: {type(exc).__name__}"
    failing = [name for name, value in checks.items() if value != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": checks, "failing": failing}
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get(
    "/metrics",
    summary="Prometheus metrics (bearer METRICS_TOKEN when that is set)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}},
        401: {"model": ErrorBody, "description": "METRICS_TOKEN is set and was not sent"},
    },
)
async def metrics(
    resources: ResourcesDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    expected = resources.settings.METRICS_TOKEN
    unset = expected is None or not expected.get_secret_value()
    if unset and Environment.production == resources.settings.ENV:
        # Fails closed: production serves its counters only behind METRICS_TOKEN.
        raise NotFound("set METRICS_TOKEN to serve /metrics in production")
    if expected is not None and expected.get_secret_value():
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            hash_token(credential.strip()), hash_token(expected.get_secret_value())
        ):
            raise MetricsUnauthorized("send `Authorization: Bearer <METRICS_TOKEN>`")
    try:
        gauges = refresh_gauges(resources.queue, resources.sessionmaker)
        await asyncio.wait_for(gauges, CHECK_TIMEOUT_S)
    except Exception as exc:  # the counters are still worth serving
        log.warning("metrics.gauges_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class MetricsUnauthorized(Unauthorized):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": "Bearer"}
