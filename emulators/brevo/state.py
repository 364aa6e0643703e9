"""The Brevo emulator's state: accounts (one per API key) with their contacts, attributes,
folders, lists, webhooks and import processes; injected faults; the request statistics."""

from __future__ import annotations

import itertools
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from emulators._openapi import OpenAPIRequestValidator
from emulators._shared import shared_path

SPEC_PATH = shared_path("specs", "brevo-v3.yml")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DEFAULT_ATTRIBUTES = {
    "de": ["VORNAME", "NACHNAME", "SMS"],
    "en": ["FIRSTNAME", "LASTNAME", "SMS"],
}


@dataclass
class BrevoConfig:
    latency: float = 0.0  # seconds per request
    latency_per_item: float = 0.0  # seconds per contact in bulk bodies
    contacts_rps: int = 10  # requests/s on /contacts*; 0 disables the limit
    import_delay: float = 0.0
    upsert_replaces_lists: bool = False
    unblacklist_ignored: bool = False
    marketing_contact_events: bool = True
    account_language: bool = False


@dataclass
class Contact:
    id: int
    email: str
    attributes: dict[str, Any] = field(default_factory=dict)
    list_ids: set[int] = field(default_factory=set)
    blacklisted: bool = False
    list_unsubscribed: set[int] = field(default_factory=set)
    created_at: str = ""
    modified_at: str = ""

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "email": self.email,
            "id": self.id,
            "emailBlacklisted": self.blacklisted,
            "smsBlacklisted": False,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "listIds": sorted(self.list_ids),
            "attributes": dict(self.attributes),
        }
        if self.list_unsubscribed:
            data["listUnsubscribed"] = sorted(self.list_unsubscribed)
        return data


@dataclass
class Account:
    api_key: str
    language: str = "de"
    email: str = "owner@example.de"
    company: str = "Musterimmobilien GmbH"
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)  # by lower-case e-mail
    by_id: dict[int, Contact] = field(default_factory=dict)
    folders: dict[int, str] = field(default_factory=dict)
    lists: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, dict[int, None]] = field(default_factory=dict)  # list -> ordered ids
    webhooks: dict[int, dict[str, Any]] = field(default_factory=dict)
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    window: deque[float] = field(default_factory=deque)


@dataclass
class Fault:
    method: str | None
    path_prefix: str
    status: int
    remaining: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class BrevoState:
    def __init__(self, config: BrevoConfig | None = None) -> None:
        self.config = config or BrevoConfig()
        self.accounts: dict[str, Account] = {}
        self.faults: list[Fault] = []
        self.request_counts: dict[str, int] = {}
        self.request_log: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.violations: list[str] = []
        self.rate_limited = 0
        self.validator = OpenAPIRequestValidator(SPEC_PATH, server_prefix="/v3")
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def add_account(self, api_key: str, language: str = "de", **extra: Any) -> Account:
        account = Account(api_key=api_key, language=language, **extra)
        if language != "de":
            account.email, account.company = "owner@example.com", "Example Realty Ltd"
        for name in DEFAULT_ATTRIBUTES.get(language, DEFAULT_ATTRIBUTES["en"]):
            account.attributes[name] = {"name": name, "category": "normal", "type": "text"}
        self.accounts[api_key] = account
        return account

    def seed_contact(
        self,
        account: Account,
        email: str,
        *,
        attributes: dict[str, Any] | None = None,
        list_ids: list[int] | None = None,
        blacklisted: bool = False,
    ) -> Contact:
        contact = create_contact(self, account, email.lower())
        contact.attributes.update(attributes or {})
        contact.blacklisted = blacklisted
        for list_id in list_ids or []:
            link(account, contact, list_id)
        return contact

    def contact_action(
        self,
        account: Account,
        email: str,
        action: str,
        *,
        list_id: int | None = None,
        at: str | None = None,
    ) -> Contact | None:
        """What a person or an admin does inside Brevo (no webhook is sent here):
        `unsubscribe` (campaign link: account-wide blacklist), `unsubscribe_list` (with
        "unsubscription per list" on: `listUnsubscribed`), `unblock`, `delete`; `at`: the
        `modifiedAt` it leaves (ISO, default now)."""
        contact = account.contacts.get(email.lower())
        if contact is None:
            return None
        if action == "unsubscribe":
            contact.blacklisted = True
        elif action == "unsubscribe_list":
            assert list_id is not None
            contact.list_unsubscribed.add(list_id)
        elif action == "unblock":
            contact.blacklisted = False
        elif action == "delete":
            for lid in list(contact.list_ids):
                unlink(account, contact, lid)
            del account.contacts[email.lower()]
            account.by_id.pop(contact.id, None)
            return None
        contact.modified_at = at or now()
        return contact


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_contact(state: BrevoState, account: Account, email: str) -> Contact:
    stamp = now()
    contact = Contact(id=state.next_id(), email=email, created_at=stamp, modified_at=stamp)
    account.contacts[email] = contact
    account.by_id[contact.id] = contact
    return contact


def link(account: Account, contact: Contact, list_id: int) -> None:
    # Brevo moves `modifiedAt` on list touches too (APIv3-php-library#49).
    if list_id not in contact.list_ids:
        contact.modified_at = now()
    contact.list_ids.add(list_id)
    account.members.setdefault(list_id, {})[contact.id] = None


def unlink(account: Account, contact: Contact, list_id: int) -> None:
    if list_id in contact.list_ids:
        contact.modified_at = now()
    contact.list_ids.discard(list_id)
    account.members.get(list_id, {}).pop(contact.id, None)


def parse_time(value: str) -> datetime:
    """A Brevo date-time filter (`2025-01-31T10:00:00.000Z`, or with an offset)."""
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def changed_since(contacts: list[Contact], req_params: Any) -> list[Contact]:
    """The `modifiedSince` / `createdSince` filters of Brevo's contact listings."""
    for name, attr in (("modifiedSince", "modified_at"), ("createdSince", "created_at")):
        value = req_params.get(name)
        if value:
            floor = parse_time(value)
            contacts = [c for c in contacts if parse_time(getattr(c, attr)) >= floor]
    return contacts


def set_attributes(account: Account, contact: Contact, attributes: dict[str, Any]) -> None:
    for name, value in attributes.items():
        if name.upper() in account.attributes and name.upper() != "EMAIL":
            contact.attributes[name.upper()] = value


def set_blacklist(state: BrevoState, contact: Contact, value: Any) -> None:
    if value is True:
        contact.blacklisted = True
    elif value is False and not state.config.unblacklist_ignored:
        contact.blacklisted = False


def find_contact(account: Account, identifier: str, kind: str | None) -> Contact | None:
    if kind == "contact_id" or (kind is None and identifier.isdigit()):
        return account.by_id.get(int(identifier)) if identifier.isdigit() else None
    return account.contacts.get(identifier.lower())
