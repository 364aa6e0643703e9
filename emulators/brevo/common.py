"""What every Brevo resource module uses: the error body, paging and the handler type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from emulators.brevo.state import Account, BrevoState

Handler = Callable[[BrevoState, Account, Request, dict[str, str], Any], Awaitable[Response]]
"""An API handler: (state, account, request, path parameters, parsed body) -> Response."""


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def not_found(what: str) -> JSONResponse:
    return error(404, "document_not_found", f"{what} does not exist")


def page(req: Request, items: list[Any], default: int) -> list[Any]:
    limit = int(req.query_params.get("limit", default))
    offset = int(req.query_params.get("offset", 0))
    if req.query_params.get("sort", "desc") == "desc":
        items = items[::-1]
    return items[offset : offset + limit]
