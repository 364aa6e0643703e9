"""Which answer a user gets for each kind of provider and onOffice failure."""

from __future__ import annotations

import pytest

from app.connections.errors import ONOFFICE_STATUS_PAGE, onoffice_app_error, provider_app_error
from app.connections.factory import PROVIDER_NAMES, provider_status_page
from app.errors import UpstreamError
from onoffice_client.models import (
    OnOfficeAuthError,
    OnOfficeClaimError,
    OnOfficeError,
    OnOfficeNotFoundError,
    OnOfficeTransientError,
)
from providers.base import (
    ProviderAuthError,
    ProviderError,
    ProviderLimitError,
    ProviderRequestError,
    ProviderTransientError,
)


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
@pytest.mark.parametrize(
    ("error", "key", "status", "upstream", "shows_status_page"),
    [
        (ProviderAuthError, "err.provider_auth", 400, False, False),
        (ProviderLimitError, "err.provider_limit", 409, False, False),
        (ProviderTransientError, "err.provider_down", 503, True, True),
        (ProviderRequestError, "err.provider_refused", 502, True, False),
        (ProviderError, "err.provider_failed", 502, True, True),
    ],
)
def test_provider_failures(
    provider: str,
    error: type[ProviderError],
    key: str,
    status: int,
    upstream: bool,
    shows_status_page: bool,
) -> None:
    exc = error("the provider says no")
    app_error = provider_app_error(provider, exc)
    assert app_error.key == key
    assert app_error.status_code == status
    assert isinstance(app_error, UpstreamError) is upstream
    assert app_error.details["provider_message"] == "the provider says no"
    assert "the provider says no" in app_error.message
    if shows_status_page:
        assert app_error.details["status_page"] == provider_status_page(provider)
    else:
        assert "status_page" not in app_error.details


@pytest.mark.parametrize(
    ("error", "key", "status", "upstream", "shows_status_page"),
    [
        (OnOfficeClaimError, "err.onoffice_claim", 409, False, False),
        (OnOfficeAuthError, "err.onoffice_auth", 409, False, False),
        (OnOfficeTransientError, "err.onoffice_down", 503, True, True),
        (OnOfficeNotFoundError, "err.onoffice_refused", 502, True, False),
        (OnOfficeError, "err.onoffice_refused", 502, True, False),
    ],
)
def test_onoffice_failures(
    error: type[OnOfficeError], key: str, status: int, upstream: bool, shows_status_page: bool
) -> None:
    app_error = onoffice_app_error(error("onOffice says no"))
    assert app_error.key == key
    assert app_error.status_code == status
    assert isinstance(app_error, UpstreamError) is upstream
    assert app_error.details["provider_message"] == "onOffice says no"
    assert ("status_page" in app_error.details) is shows_status_page
    if shows_status_page:
        assert app_error.details["status_page"] == ONOFFICE_STATUS_PAGE
