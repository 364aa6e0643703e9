"""Typed records and errors of the onOffice API client (values normalised at the edge)."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum

from pydantic import BaseModel, Field


class NewsletterStatus(IntEnum):
    """onOffice `newsletter_aktiv` keys."""

    no = 0
    yes = 1
    cancellation = 2
    doi_pending = 3
    not_specified = 4
    unknown = 5


class Address(BaseModel):
    """One onOffice address, as the connector needs it."""

    id: int
    salutation: str = ""  # Anrede key, e.g. "Herr", "Frau", "Firma"
    title: str = ""  # Titel
    first_name: str = ""  # Vorname
    last_name: str = ""  # Name
    email: str = ""  # Email (main address), raw as stored in onOffice
    newsletter: NewsletterStatus = NewsletterStatus.not_specified
    tags: list[str] = Field(default_factory=list)  # NewsletterTag keys
    active: bool = True  # Status 1 = active, 0 = archived
    modified_at: datetime | None = None  # Aenderung, when the API returns it
    language: str | None = None  # SpracheKontakt (ISO-3, e.g. DEU / ENG)
    # Values of the further fields a scope reads (e.g. `Benutzer`), multiselects split.
    extra: dict[str, list[str]] = Field(default_factory=dict)


class AddressUpdate(BaseModel):
    """Fields to change on one address; None means "leave as is"."""

    salutation: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    newsletter: NewsletterStatus | None = None
    tags: list[str] | None = None  # full set (multiselect replace semantics)


class AddressCreate(BaseModel):
    email: str
    salutation: str = ""
    first_name: str = ""
    last_name: str = ""
    newsletter: NewsletterStatus = NewsletterStatus.yes
    tags: list[str] = Field(default_factory=list)
    origin: str | None = None  # HerkunftKontakt key, e.g. "Newsletter"


class ActivityCreate(BaseModel):
    address_ids: list[int]
    kind: str  # actionkind (German key), e.g. "Newsletter"
    type: str | None = None  # actiontype key, e.g. "bestellt"
    note: str = ""
    at: datetime | None = None


class ActionKind(BaseModel):
    key: str
    label: str
    types: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class OnOfficeError(Exception):
    """An onOffice failure; `message` keeps onOffice's own text."""

    def __init__(self, message: str, *, errorcode: int | None = None) -> None:
        super().__init__(f"onOffice error {errorcode}: {message}" if errorcode else message)
        self.message = message
        self.errorcode = errorcode


class OnOfficeTransientError(OnOfficeError):
    """Network failure or 5xx: the request may succeed later. `maybe_applied`: a request that
    creates something failed after it may have reached onOffice (a timeout, 500/502/504), so
    it was not sent again; what it creates may exist already."""

    def __init__(
        self, message: str, *, errorcode: int | None = None, maybe_applied: bool = False
    ) -> None:
        super().__init__(message, errorcode=errorcode)
        self.maybe_applied = maybe_applied


class OnOfficeAuthError(OnOfficeError):
    """Bad token/secret/HMAC (22, 137, 243) or customer/user unknown or inactive."""


class OnOfficeAccessLost(OnOfficeAuthError):
    """onOffice no longer lets this API user in: not authenticated (22: the token was revoked,
    the provider locked in the Marketplace), the customer unknown or inactive (41, 42: the
    subscription cancelled) or the API user unknown or inactive (43, 104). Not a fault of the
    request: nothing works for this customer until onOffice accepts the access again."""


class OnOfficeClockError(OnOfficeError):
    """136: timestamp too old or server time wrong."""


class OnOfficeClaimError(OnOfficeError):
    """193/201/248: extendedclaim missing, outdated or not matching. A user must open the app."""


class OnOfficeIPError(OnOfficeError):
    """158: access from this IP not allowed."""


class OnOfficePermissionError(OnOfficeError):
    """Missing rights (131, 174, 261, 240...)."""


class OnOfficeNotFoundError(OnOfficeError):
    """Unknown record id (80, 235, 292)."""
