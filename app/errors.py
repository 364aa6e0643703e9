"""Domain errors carry their own HTTP status and a message a user can act on."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, status_code: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.details = details


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class UpstreamError(AppError):
    """A provider or onOffice failed; details name which one and where to look."""

    status_code = 502
    code = "upstream_error"


async def app_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body: dict[str, Any] = {"error": exc.code, "message": exc.message}
    if exc.details:
        body["details"] = exc.details
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def unexpected_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Any other failure: a JSON 500 (the transaction was rolled back, so nothing was saved)."""
    log.error("http.unexpected_error", exc_info=exc)
    return JSONResponse(
        {
            "error": "internal_error",
            "message": "Unexpected error; nothing was saved. Please try again.",
        },
        status_code=500,
    )
