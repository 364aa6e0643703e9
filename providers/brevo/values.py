"""Pure helpers of the Brevo client: identifiers, attribute rows, list sizes, languages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email

from providers._time import parse_iso_timestamp
from providers.base import ContactData, FieldMapping, ProviderContact, ProviderState

# Candidates per logical field, most likely first; only text attributes qualify because Brevo
# silently drops values that don't match an attribute's type.
FIRST_NAME_CANDIDATES: Final = ("VORNAME", "FIRSTNAME", "PRENOM", "FNAME", "FIRST_NAME")
LAST_NAME_CANDIDATES: Final = ("NACHNAME", "LASTNAME", "NOM", "LNAME", "LAST_NAME")
SALUTATION_CANDIDATES: Final = ("ANREDE", "SALUTATION", "CIV")
GREETING_CANDIDATES: Final = ("BRIEFANREDE", "GREETING")
GERMAN_COUNTRIES: Final = {"de", "deu", "germany", "deutschland", "at", "austria", "österreich"}


def to_contact(raw: Mapping[str, Any], list_id: int, mapping: FieldMapping) -> ProviderContact:
    """A Brevo contact as the connector sees it; `status` from the blacklist and the list's
    `listIds` / `listUnsubscribed`."""
    attrs = raw.get("attributes") or {}
    blacklisted = bool(raw.get("emailBlacklisted"))
    in_list = list_id in (raw.get("listIds") or [])
    unsubscribed = list_id in (raw.get("listUnsubscribed") or [])
    if blacklisted:
        status = ProviderState.blacklisted
    elif unsubscribed:
        status = ProviderState.unsubscribed
    elif not in_list:
        status = ProviderState.not_in_list
    else:
        status = ProviderState.subscribed
    return ProviderContact(
        email=str(raw.get("email", "")).lower(),
        provider_id=str(raw["id"]) if raw.get("id") is not None else None,
        first_name=first_attr(attrs, mapping.first_name, FIRST_NAME_CANDIDATES),
        last_name=first_attr(attrs, mapping.last_name, LAST_NAME_CANDIDATES),
        subscribed=status == ProviderState.subscribed,
        status=status,
        last_changed=parse_iso_timestamp(raw.get("modifiedAt")),
        blacklisted=blacklisted,
        in_list=in_list,
        opted_in_at=parse_iso_timestamp(raw.get("createdAt")),
    )


def identifier(email: str) -> str:
    return quote(email, safe="")


def email_problem(email: str) -> str | None:
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def attributes(contact: ContactData, mapping: FieldMapping) -> dict[str, str]:
    # Empty values are left out so they never wipe data entered in Brevo.
    pairs = (
        (mapping.first_name, contact.first_name),
        (mapping.last_name, contact.last_name),
        (mapping.salutation, contact.salutation),
        (mapping.greeting, contact.greeting),
    )
    return {name: value for name, value in pairs if name and value}


def list_size(data: Mapping[str, Any]) -> int | None:
    for key in ("uniqueSubscribers", "totalSubscribers"):
        value = data.get(key)
        if isinstance(value, int):
            return value
    return None


def first_attr(
    attributes: Mapping[str, Any], preferred: str | None, fallback: Sequence[str]
) -> str:
    for name in (preferred, *fallback):
        if name and attributes.get(name) not in (None, ""):
            return str(attributes[name])
    return ""


def account_language(data: Mapping[str, Any]) -> str | None:
    for key in ("language", "locale", "lang"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value.split("-")[0].split("_")[0].lower()
    address = data.get("address")
    country = address.get("country") if isinstance(address, dict) else None
    if isinstance(country, str) and country:
        return "de" if country.strip().lower() in GERMAN_COUNTRIES else "en"
    return None


def str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
