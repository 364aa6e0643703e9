"""Mapping of onOffice error codes to the typed errors in `onoffice_client.models`."""

from __future__ import annotations

from onoffice_client.models import (
    OnOfficeAccessLost,
    OnOfficeAuthError,
    OnOfficeClaimError,
    OnOfficeClockError,
    OnOfficeError,
    OnOfficeIPError,
    OnOfficeNotFoundError,
    OnOfficePermissionError,
)

AUTH_CODES = frozenset({22, 137, 243, 41, 42, 43, 104})
# Of them, onOffice refusing the customer or its API user as such (not a bad request): the
# provider locked or the subscription cancelled, the API user deleted or deactivated. onOffice
# does not document which code a lock gives; a top-level "not authenticated" without a code
# (status 400) counts as 22 (transport.py).
ACCESS_LOST_CODES = frozenset({22, 41, 42, 43, 104})
CLOCK_CODES = frozenset({136})
CLAIM_CODES = frozenset({193, 201, 248})
IP_CODES = frozenset({158})
PERMISSION_CODES = frozenset({131, 174, 261, 240})
NOT_FOUND_CODES = frozenset({80, 235, 292})

_HINTS: dict[type[OnOfficeError], str] = {
    OnOfficeAccessLost: "onOffice refuses the API token: the provider may be locked or the "
    "subscription cancelled in the onOffice Marketplace, or the API user removed",
    OnOfficeAuthError: "check the onOffice API token and secret, and that the customer is active",
    OnOfficeClockError: "check this server's clock (onOffice allows 120 s of drift)",
    OnOfficeClaimError: "a user must open the connector in onOffice to refresh the access claim",
    OnOfficeIPError: "allow this server's IP address for the API user in onOffice",
    OnOfficePermissionError: "grant the API user the missing right in onOffice",
}


def error_class(errorcode: int) -> type[OnOfficeError]:
    if errorcode in ACCESS_LOST_CODES:
        return OnOfficeAccessLost
    if errorcode in AUTH_CODES:
        return OnOfficeAuthError
    if errorcode in CLOCK_CODES:
        return OnOfficeClockError
    if errorcode in CLAIM_CODES:
        return OnOfficeClaimError
    if errorcode in IP_CODES:
        return OnOfficeIPError
    if errorcode in PERMISSION_CODES:
        return OnOfficePermissionError
    if errorcode in NOT_FOUND_CODES:
        return OnOfficeNotFoundError
    return OnOfficeError


def error_for(errorcode: int, message: str, *, context: str = "") -> OnOfficeError:
    """The typed error for an onOffice errorcode, keeping onOffice's message and adding a hint."""
    cls = error_class(errorcode)
    text = message.strip() or "unknown error"
    if context:
        text = f"{context}: {text}"
    if hint := _HINTS.get(cls):
        text = f"{text} ({hint})"
    return cls(text, errorcode=errorcode)
