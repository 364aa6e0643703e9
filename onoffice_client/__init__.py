"""onOffice enterprise API client, URL signatures and normalised records."""

from onoffice_client.client import OnOfficeClient
from onoffice_client.models import (
    ActionKind,
    ActivityCreate,
    Address,
    AddressCreate,
    AddressUpdate,
    NewsletterStatus,
    OnOfficeAccessLost,
    OnOfficeAuthError,
    OnOfficeClaimError,
    OnOfficeClockError,
    OnOfficeError,
    OnOfficeIPError,
    OnOfficeNotFoundError,
    OnOfficePermissionError,
    OnOfficeTransientError,
)
from onoffice_client.signature import (
    canonical_url,
    hmac_v2,
    php_urlencode,
    sign_url_params,
    verify_url_signature,
)

__all__ = [
    "ActionKind",
    "ActivityCreate",
    "Address",
    "AddressCreate",
    "AddressUpdate",
    "NewsletterStatus",
    "OnOfficeAccessLost",
    "OnOfficeAuthError",
    "OnOfficeClaimError",
    "OnOfficeClient",
    "OnOfficeClockError",
    "OnOfficeError",
    "OnOfficeIPError",
    "OnOfficeNotFoundError",
    "OnOfficePermissionError",
    "OnOfficeTransientError",
    "canonical_url",
    "hmac_v2",
    "php_urlencode",
    "sign_url_params",
    "verify_url_signature",
]
