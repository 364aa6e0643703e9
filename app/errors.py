"""Domain errors carry their own HTTP status and a message a user can act on."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.i18n import Language, has_key, pick_language, t

log = logging.getLogger(__name__)


class AppError(Exception):
    """`message` is a catalogue key (`err.*`, rendered per request language with `params`) or,
    for machine-facing errors, a literal English text. `.message` is always the English text
    (logs, tests, plain-text answers); the handler answers in the caller's language."""

    status_code = 400
    code = "bad_request"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        """`class NotFound(AppError, status=404, code="not_found")` sets both at once."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status_code = status
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        params: dict[str, Any] | None = None,
        **details: Any,
    ) -> None:
        self.key = message if has_key(message) else None
        self.params = dict(params or {})
        self.message = t("en", message, **self.params) if self.key else message
        super().__init__(self.message)
        if status_code is not None:
            self.status_code = status_code
        self.details = details

    def render(self, lang: str) -> str:
        return t(lang, self.key, **self.params) if self.key else self.message


class NotFound(AppError, status=404, code="not_found"): ...


class TenantNotActivated(NotFound, code="not_activated"):
    """The onOffice customer has not activated the connector (or is gone): 404 for a page or
    a session; a job or a connection step that needs its onOffice token raises it with 409."""


class Conflict(AppError, status=409, code="conflict"): ...


class Unauthorized(AppError, status=401, code="unauthorized"): ...


class UpstreamError(AppError, status=502, code="upstream_error"):
    """A provider or onOffice failed; details name which one and where to look."""


def request_language(request: Request) -> str:
    """The caller's language: the session's (onOffice's UserLanguage at sign-in), the
    `UserLanguage` of a signed URL, `Accept-Language`, else English (API clients)."""
    language = getattr(request.state, "language", None)
    if language in ("de", "en"):
        return str(language)
    return pick_language(
        request.query_params.get("UserLanguage"),
        request.headers.get("accept-language"),
        default=Language.en,
    )


async def app_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    body: dict[str, Any] = {"error": exc.code, "message": exc.render(request_language(request))}
    if exc.details:
        body["details"] = exc.details
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 with a translated message; FastAPI's `detail` list stays for API clients."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    field = ".".join(str(part) for part in errors[0].get("loc", ())[1:]) if errors else ""
    return JSONResponse(
        {
            "error": "validation_error",
            "message": t(request_language(request), "err.validation", field=field or "?"),
            # Without `input` and `ctx`: a refused value may be a secret (an API key).
            "detail": jsonable_encoder(
                [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in errors]
            ),
        },
        status_code=422,
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any other failure: a JSON 500 (the transaction was rolled back, so nothing was saved)."""
    log.error("http.unexpected_error", exc_info=exc)
    return JSONResponse(
        {"error": "internal_error", "message": t(request_language(request), "err.internal")},
        status_code=500,
    )
