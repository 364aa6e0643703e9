"""Brevo flavours of the shared provider error taxonomy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from providers._http import retry_after_from
from providers.base import (
    ProviderAuthError,
    ProviderLimitError,
    ProviderRequestError,
    ProviderTransientError,
)


class BrevoTransientError(ProviderTransientError):
    """429, 425 Too Early, 5xx or a network failure: the same request may succeed later."""


class BrevoRequestError(ProviderRequestError):
    """Brevo refused the request for good; `code` is Brevo's code, e.g. `invalid_parameter`."""

    def __init__(self, message: str, *, code: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.code = code


class BrevoKeptBlacklistedError(BrevoRequestError):
    """Brevo kept a contact blacklisted although a fresh consent asked to lift it."""


class BrevoAuthError(BrevoRequestError, ProviderAuthError):
    """The API key is unknown, revoked, lacks permission, or the server's IP is not authorised."""


class BrevoLimitError(BrevoRequestError, ProviderLimitError):
    """An account limit: not enough credits, or the 40-webhook maximum."""


def from_response(
    response: httpx.Response, label: str, redact: Callable[[str], str] = str
) -> BrevoRequestError | BrevoTransientError:
    """The error for one of Brevo's error answers (`{code, message}`), its message safe to show."""
    status = response.status_code
    code: str | None = None
    detail = response.reason_phrase or "error"
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = response.text[:500] or None
    if isinstance(body, dict):
        code = str(body["code"]) if body.get("code") else None
        detail = redact(str(body.get("message") or detail))
    request_id = response.headers.get("sib-request-id")
    suffix = f" (Brevo request id {request_id})" if request_id else ""
    kw: dict[str, Any] = {"status_code": status, "endpoint": label, "error_body": body}
    if status == 429 or status == 425 or status >= 500:
        what = "rate limit reached" if status == 429 else f"temporary error {status}"
        return BrevoTransientError(
            f"Brevo {what} on {label}: {detail}{suffix}",
            # Brevo sends its own reset header; a plain Retry-After is honoured too.
            retry_after=retry_after_from(response, ("x-sib-ratelimit-reset", "retry-after")),
            **kw,
        )
    message = f"Brevo refused {label} ({status} {code or ''}): {detail}{suffix}"
    if status == 401:
        return BrevoAuthError(
            f"Brevo rejected the API key: {detail}. Check the key under SMTP & API → API keys; "
            "if 'Authorized IPs' is enabled in Brevo, authorise this server's IP address."
            f"{suffix}",
            code=code,
            **kw,
        )
    if status == 403:
        return BrevoAuthError(
            f"The Brevo API key lacks permission for {label}: {detail}{suffix}", code=code, **kw
        )
    if status == 402 or code == "not_enough_credits":
        return BrevoLimitError(
            f"Brevo account limit: {detail}. Upgrade the plan or buy credits.{suffix}",
            code=code,
            **kw,
        )
    return BrevoRequestError(message, code=code, **kw)


def transient(message: str, endpoint: str) -> BrevoTransientError:
    return BrevoTransientError(message, endpoint=endpoint)
