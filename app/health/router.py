"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.deps import ResourcesDep
from app.metrics import refresh_gauges

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
        async with resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    for name, probe in (("database", check_db), ("queue", resources.queue.ping)):
        try:
            await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}: {exc}"[:300]
    failing = [name for name, value in checks.items() if value != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": checks, "failing": failing}
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(resources: ResourcesDep) -> Response:
    try:
        await asyncio.wait_for(refresh_gauges(resources), CHECK_TIMEOUT_S)
    except Exception as exc:  # the counters are still worth serving
        log.warning("metrics.gauges_failed", extra={"error": f"{type(exc).__name__}: {exc}"})
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
