"""Provider and onOffice failures as errors a user can act on, with the right status page."""

from __future__ import annotations

from collections.abc import Sequence

from app.connections.factory import PROVIDER_NAMES, provider_label, provider_status_page
from app.connections.onoffice_access import GroupClaimMissing
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

# A rule: (error class, message key, HTTP status, error type, whether to point at the status
# page). The first class that matches decides; the last rule of a table is its fallback.
Rule = tuple[type[Exception], str, int, type[AppError], bool]

PROVIDER_RULES: Sequence[Rule] = (
    (ProviderAuthError, "err.provider_auth", 400, AppError, False),
    (ProviderLimitError, "err.provider_limit", 409, AppError, False),
    (ProviderTransientError, "err.provider_down", 503, UpstreamError, True),
    (ProviderRequestError, "err.provider_refused", 502, UpstreamError, False),
    (ProviderError, "err.provider_failed", 502, UpstreamError, True),
)
ONOFFICE_RULES: Sequence[Rule] = (
    (GroupClaimMissing, "err.group_claim_missing", 409, AppError, False),
    (OnOfficeClaimError, "err.onoffice_claim", 409, AppError, False),
    (OnOfficeAuthError, "err.onoffice_auth", 409, AppError, False),
    (OnOfficeTransientError, "err.onoffice_down", 503, UpstreamError, True),
    (OnOfficeError, "err.onoffice_refused", 502, UpstreamError, False),
)


def _app_error(
    rules: Sequence[Rule], exc: ProviderError | OnOfficeError, **params: object
) -> AppError:
    # The upstream's own text stays as `details.provider_message` (and inside the message).
    status_page = params.get("status_page")
    for cls, key, status, kind, show_status_page in rules:
        if isinstance(exc, cls):
            details = {"status_page": status_page} if show_status_page else {}
            return kind(
                key,
                status_code=status,
                params={"detail": exc.message, **params},
                provider_message=exc.message,
                **details,
            )
    raise TypeError(f"no rule for {type(exc).__name__}")  # the last rule is the base class


def provider_app_error(provider: str, exc: ProviderError) -> AppError:
    label = PROVIDER_LABELS.get(provider, provider)
    return _app_error(PROVIDER_RULES, exc, provider=label, status_page=STATUS_PAGES.get(provider))


def onoffice_app_error(exc: OnOfficeError) -> AppError:
    return _app_error(ONOFFICE_RULES, exc, status_page=STATUS_PAGES["onoffice"])
