"""Provider and onOffice failures as errors a user can act on, with the right status page."""

from __future__ import annotations

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

STATUS_PAGES = {
    "mailchimp": "https://status.mailchimp.com",
    "brevo": "https://status.brevo.com",
    "onoffice": "https://status.onoffice.de",
}
PROVIDER_LABELS = {"mailchimp": "Mailchimp", "brevo": "Brevo", "onoffice": "onOffice"}


def provider_app_error(provider: str, exc: ProviderError) -> AppError:
    label = PROVIDER_LABELS.get(provider, provider)
    if isinstance(exc, ProviderAuthError):
        return AppError(f"{label} rejected the API key: {exc.message}", status_code=400)
    if isinstance(exc, ProviderLimitError):
        return AppError(f"{label}: {exc.message}", status_code=409)
    if isinstance(exc, ProviderTransientError):
        return UpstreamError(
            f"{label} is not reachable right now ({exc.message}). Please try again in a few "
            f"minutes; current incidents: {STATUS_PAGES.get(provider, '')}",
            status_code=503,
            status_page=STATUS_PAGES.get(provider),
        )
    if isinstance(exc, ProviderRequestError):
        return UpstreamError(f"{label} refused the request: {exc.message}", status_code=502)
    return UpstreamError(f"{label} failed: {exc.message}", status_page=STATUS_PAGES.get(provider))


def onoffice_app_error(exc: OnOfficeError) -> AppError:
    if isinstance(exc, OnOfficeClaimError):
        return AppError(
            "onOffice needs a fresh login: open the connector once from within onOffice "
            f"({exc.message})",
            status_code=409,
        )
    if isinstance(exc, OnOfficeAuthError):
        return AppError(
            f"onOffice rejected the connector's credentials ({exc.message}); activate the "
            "connector again in the onOffice marketplace",
            status_code=409,
        )
    if isinstance(exc, OnOfficeTransientError):
        return UpstreamError(
            f"onOffice is not reachable right now ({exc.message}); current incidents: "
            f"{STATUS_PAGES['onoffice']}",
            status_code=503,
            status_page=STATUS_PAGES["onoffice"],
        )
    return UpstreamError(f"onOffice refused the request: {exc.message}")
