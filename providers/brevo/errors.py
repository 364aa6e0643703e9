"""Brevo flavours of the shared provider error taxonomy."""

from __future__ import annotations

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


class BrevoAuthError(BrevoRequestError, ProviderAuthError):
    """The API key is unknown, revoked, lacks permission, or the server's IP is not authorised."""


class BrevoLimitError(BrevoRequestError, ProviderLimitError):
    """An account limit: not enough credits, or the 40-webhook maximum."""
