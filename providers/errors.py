"""The provider error taxonomy shared by both providers (each subclasses it); re-exported by
`providers.base`."""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every provider failure. `message` is safe to show to a user (no secrets)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str | None = None,
        error_body: object | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.endpoint = endpoint
        self.error_body = error_body


class ProviderTransientError(ProviderError):
    """429, 5xx, network errors, Mailchimp's bodiless 403 under throttling: retry later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ProviderRequestError(ProviderError):
    """A permanent 4xx: retrying the same request cannot succeed."""


class ProviderAuthError(ProviderRequestError):
    """The API key is wrong, revoked or lacks permissions."""


class ProviderLimitError(ProviderRequestError):
    """An account limit blocks the operation (e.g. Mailchimp free plan's single audience)."""
