"""Provider and onOffice failures as errors a user can act on, with the right status page."""

from __future__ import annotations

from app.connections.factory import PROVIDER_NAMES, provider_label, provider_status_page
from app.errors import AppError, UpstreamError
from onoffice_client.models import (
    OnOfficeAuthError,
    OnOfficeClaimError,
    OnOfficeError,
    OnOfficeTransientError,
)
from providers.base import (
    ProviderAuthError,
    ProviderError,
    ProviderLimitError,
    ProviderRequestError,
    ProviderTransientError,
)

ONOFFICE_STATUS_PAGE = "https://status.onoffice.de"
STATUS_PAGES = {
    **{name: provider_status_page(name) for name in PROVIDER_NAMES},
    "onoffice": ONOFFICE_STATUS_PAGE,
}
PROVIDER_LABELS = {
    **{name: provider_label(name) for name in PROVIDER_NAMES},
    "onoffice": "onOffice",
}


def provider_app_error(provider: str, exc: ProviderError) -> AppError:
    label = PROVIDER_LABELS.get(provider, provider)
    # The provider's own text stays as `details.provider_message` (and inside the message).
    params = {"provider": label, "detail": exc.message, "status_page": STATUS_PAGES.get(provider)}
    if isinstance(exc, ProviderAuthError):
        return AppError(
            "err.provider_auth", status_code=400, params=params, provider_message=exc.message
        )
    if isinstance(exc, ProviderLimitError):
        return AppError(
            "err.provider_limit", status_code=409, params=params, provider_message=exc.message
        )
    if isinstance(exc, ProviderTransientError):
        return UpstreamError(
            "err.provider_down",
            status_code=503,
            params=params,
            status_page=STATUS_PAGES.get(provider),
            provider_message=exc.message,
        )
    if isinstance(exc, ProviderRequestError):
        return UpstreamError(
            "err.provider_refused", status_code=502, params=params, provider_message=exc.message
        )
    return UpstreamError(
        "err.provider_failed",
        params=params,
        status_page=STATUS_PAGES.get(provider),
        provider_message=exc.message,
    )


def onoffice_app_error(exc: OnOfficeError) -> AppError:
    params = {"detail": exc.message, "status_page": STATUS_PAGES["onoffice"]}
    if isinstance(exc, OnOfficeClaimError):
        return AppError(
            "err.onoffice_claim", status_code=409, params=params, provider_message=exc.message
        )
    if isinstance(exc, OnOfficeAuthError):
        return AppError(
            "err.onoffice_auth", status_code=409, params=params, provider_message=exc.message
        )
    if isinstance(exc, OnOfficeTransientError):
        return UpstreamError(
            "err.onoffice_down",
            status_code=503,
            params=params,
            status_page=STATUS_PAGES["onoffice"],
            provider_message=exc.message,
        )
    return UpstreamError("err.onoffice_refused", params=params, provider_message=exc.message)
