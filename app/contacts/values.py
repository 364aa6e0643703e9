"""From an onOffice address to the contact the provider should have (pure functions)."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from app.i18n import Language, reasons
from onoffice_client.models import Address
from providers.base import ContactData, normalise_email

# Re-exported: the one email identity lives in providers.base, the one language in app.i18n.
__all__ = ["Language", "normalise_email"]


@dataclass(frozen=True)
class EmailCheck:
    email: str  # normalised ("" when missing)
    problem: str | None  # None, "missing_email" or "invalid_email"
    reason: str = ""  # the validator's own (English) text, kept as the detail
    code: str = ""  # the reason code rendered per language (app/i18n/reasons.py)


# An ASCII dot-atom local part (RFC 5322 atext) and a domain of letters, digits, dots and
# hyphens: the common case, which the validator accepts whenever the domain is valid and the
# lengths fit (tests/syncs/test_email_check.py compares both on tricky cases).
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([a-z0-9.-]+)\Z"
)


@functools.lru_cache(maxsize=4096)
def _valid_domain(domain: str) -> bool:
    """The validator's verdict on a domain, once per domain (most of its cost per address)."""
    try:
        validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def by_person(found: Mapping[str, Sequence[Address]]) -> dict[str, list[Address]]:
    """onOffice addresses read by email (the client's `find_addresses_by_emails`) grouped by
    the person: their normalised email."""
    people: dict[str, list[Address]] = {}
    for address in (a for group in found.values() for a in group):
        people.setdefault(normalise_email(address.email), []).append(address)
    return people


def check_email(raw: str | None) -> EmailCheck:
    email = normalise_email(raw or "")
    if not email:
        return EmailCheck("", "missing_email", "the address has no email", reasons.MISSING_EMAIL)
    plain = _PLAIN_EMAIL.match(email)
    if (
        plain is not None
        and len(email) <= 254
        and plain.start(1) - 1 <= 64
        and _valid_domain(plain.group(1))
    ):
        return EmailCheck(email, None)
    try:
        # Syntax only: a DNS lookup per address would make a large sync slow and flaky.
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return EmailCheck(email, "invalid_email", str(exc), reasons.email_reason(str(exc)))
    return EmailCheck(email, None)


_LANGUAGE_CODES = {"DEU": Language.de, "GER": Language.de, "ENG": Language.en}


def contact_language(address: Address, default: Language) -> Language:
    if address.language:
        return _LANGUAGE_CODES.get(address.language.upper(), default)
    return default


def greeting(salutation: str, title: str, last_name: str, language: Language) -> str:
    """The letter greeting, e.g. "Sehr geehrter Herr Dr. Müller" / "Dear Ms Smith"."""
    name = " ".join(part for part in (title.strip(), last_name.strip()) if part)
    key = salutation.strip().lower()
    if language == Language.en:
        if name and key == "herr":
            return f"Dear Mr {name}"
        if name and key == "frau":
            return f"Dear Ms {name}"
        if name and key == "eheleute":
            return f"Dear Mr and Mrs {name}"
        if name and key == "familie":
            return f"Dear {name} family"
        return "Dear Sir or Madam"
    if name and key == "herr":
        return f"Sehr geehrter Herr {name}"
    if name and key == "frau":
        return f"Sehr geehrte Frau {name}"
    if name and key in ("eheleute", "familie"):
        return f"Sehr geehrte {salutation.strip()} {name}"
    return "Sehr geehrte Damen und Herren"


def contact_from_address(address: Address, email: str, default_language: Language) -> ContactData:
    language = contact_language(address, default_language)
    return ContactData(
        email=email,
        first_name=address.first_name.strip(),
        last_name=address.last_name.strip(),
        salutation=address.salutation.strip(),
        greeting=greeting(address.salutation, address.title, address.last_name, language),
        tags=sorted({t.strip() for t in address.tags if t.strip()}),
        subscribed=True,
        external_id=str(address.id),
    )


def contact_hash(contact: ContactData) -> str:
    """Fingerprint of the contact's fields (tags are compared as sets, separately)."""
    data = contact.model_dump(exclude={"external_id", "tags"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
