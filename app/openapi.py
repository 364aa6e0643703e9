"""Response documentation shared by the routers, so the OpenAPI document lists every status a
route can answer (the schemathesis run in tests/security checks it)."""

from __future__ import annotations

from typing import Any

from app.tenants.schemas import ErrorBody

BEARER_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "Missing, invalid or expired bearer token, or the customer is unknown "
        "or deactivated (with `WWW-Authenticate: Bearer`).",
    },
    429: {
        "model": ErrorBody,
        "description": "More than API_RATE_PER_TENANT requests per second of this customer "
        "(beyond the burst); `Retry-After` says when to try again.",
    },
}

NO_CONNECTION: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No provider connected yet (or an unknown id)"},
}
