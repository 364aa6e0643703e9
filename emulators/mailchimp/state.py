"""The Mailchimp emulator's state: accounts (each API key belongs to one), their lists, members,
tags (= static segments), webhooks, injected faults and the request statistics; tests seed it
directly or through `/_control/`."""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from email_validator import EmailNotValidError, validate_email

from emulators._kit import sleep_for
from emulators._shared import shared_path

SPEC_PATH = Path(
    os.environ.get(
        "MAILCHIMP_SPEC_PATH",
        str(shared_path("specs", "mailchimp-marketing.ballerina-derived.openapi.json")),
    )
)
ERROR_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
DEFAULT_API_KEY = "0123456789abcdef0123456789abcdef-us1"
DEFAULT_ACCOUNT_ID = "8d3a3db4d97663a9074efcc16"
BATCH_LIMIT = 500
PAGE_LIMIT = 1000
WRITABLE_STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
_FAST_EMAIL = re.compile(r"[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")

UrlChecker = Callable[[str], Awaitable[bool]]


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@lru_cache(maxsize=65536)
def valid_email(email: str) -> bool:
    if _FAST_EMAIL.fullmatch(email):
        return True
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


async def check_url_with_get(url: str) -> bool:
    """Mailchimp's webhook URL validation: a GET that must answer 200."""
    headers = {"User-Agent": "MailChimp.com WebHook Validator"}
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@dataclass(slots=True)
class Member:
    email: str
    status: str
    merge_fields: dict[str, Any]
    tags: dict[str, int]  # name -> tag id, in insertion order
    unique_email_id: str
    web_id: int
    contact_id: str
    timestamp_signup: str
    last_changed: str
    self_unsubscribed: bool = False

    @property
    def id(self) -> str:
        return subscriber_hash(self.email)


def account_info(account_id: str, name: str) -> dict[str, Any]:
    """What `GET /` answers for an account (before `total_subscribers`)."""
    username = re.sub(r"[^a-z0-9]", "", name.lower())[:20] or "account"
    return {
        "account_id": account_id,
        "account_name": name,
        "email": f"office@{username}.example",
        "first_name": "Max",
        "last_name": "Muster",
        "username": username,
        "contact": {
            "company": name,
            "addr1": "Musterstraße 1",
            "addr2": "",
            "city": "Berlin",
            "state": "",
            "zip": "10115",
            "country": "DE",
        },
        "pricing_plan_type": "monthly",
        "total_subscribers": 0,
    }


@dataclass
class MailchimpAccount:
    """One Mailchimp account: its `GET /` answer and the addresses it refuses in every audience.
    Its keys are in `MailchimpState.key_accounts` (the default account's keys need no entry)."""

    info: dict[str, Any]
    # Seeded by tests (`/_control/blocked/forgotten`): refused in every audience of the account.
    forgotten_emails: set[str] = field(default_factory=set)
    # Seeded by tests (`/_control/blocked/compliance`): subscribing them is refused as
    # "Member In Compliance State" in the account's audiences.
    compliance_emails: set[str] = field(default_factory=set)
    # Seeded by tests (`/_control/blocked/segment`): the static-segment endpoint reports them in
    # `errors` instead of adding (an unexplained per-address refusal; the member tags endpoint
    # still accepts them).
    segment_rejected_emails: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return str(self.info["account_id"])


def _default_accounts() -> dict[str, MailchimpAccount]:
    info = account_info(DEFAULT_ACCOUNT_ID, "Musterhaus Immobilien GmbH")
    info.update(email="office@musterhaus-immobilien.de", username="musterhaus")
    return {DEFAULT_ACCOUNT_ID: MailchimpAccount(info)}


@dataclass
class MailchimpList:
    id: str
    name: str
    web_id: int
    body: dict[str, Any]
    date_created: str
    account_id: str = DEFAULT_ACCOUNT_ID  # the account it belongs to: only its keys see it
    members: dict[str, Member] = field(default_factory=dict)
    merge_fields: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tag_ids: dict[str, int] = field(default_factory=dict)  # tags are the static segments
    tag_created: dict[int, str] = field(default_factory=dict)
    # Emails permanently deleted from this audience: Mailchimp refuses to add them again here
    # ("was permanently deleted from this audience"), not in the account's other audiences.
    forgotten: set[str] = field(default_factory=set)
    version: int = 0
    _views: dict[tuple[str | None, int], list[str]] = field(default_factory=dict)

    def view(self, status: str | None) -> list[str]:
        """Member hashes for a status filter (archived hidden unless asked), cached per version."""
        cached = self._views.get((status, self.version))
        if cached is None:
            self._views.clear()
            if status is None:
                cached = [h for h, m in self.members.items() if m.status != "archived"]
            else:
                cached = [h for h, m in self.members.items() if m.status == status]
            self._views[(status, self.version)] = cached
        return cached


@dataclass
class Fault:
    status: int
    count: int = 1
    retry_after: float | None = None
    bodiless: bool = False
    path_contains: str | None = None
    method: str | None = None
    # The request is carried out, then its answer is replaced by the fault: the answer was lost
    # on the way back (a proxy's 502/504, a dropped connection), the change was made.
    after: bool = False

    @property
    def remaining(self) -> int:  # what emulators._kit.take_fault counts down
        return self.count

    @remaining.setter
    def remaining(self, value: int) -> None:
        self.count = value

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path_contains and self.path_contains not in path)


@dataclass
class MailchimpState:
    """Everything the emulator knows; tests may seed it directly or through `/_control/`."""

    # Every accepted key (a revoked key is discarded); a key belongs to the default account
    # unless `key_accounts` names another (`add_account`).
    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_API_KEY})
    key_accounts: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, MailchimpAccount] = field(default_factory=_default_accounts)
    # Every account's lists by id (ids are unique across accounts, as at Mailchimp).
    lists: dict[str, MailchimpList] = field(default_factory=dict)
    max_lists: int | None = None  # 1 = free plan
    max_connections: int = 10
    latency_s: float = 0.0
    latency_per_item_s: float = 0.0
    validate_spec: bool = True
    # Recipients of sent campaigns (campaign id -> (list id, emails)), for /reports/.../sent-to.
    campaign_recipients: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    url_checker: UrlChecker = check_url_with_get
    request_counts: Counter[str] = field(default_factory=Counter)
    # Each "changed since" member listing in the order of the change (the connector's
    # confirmation reads): (status asked for or None, offset, members returned).
    changed_listings: list[tuple[str | None, int, int]] = field(default_factory=list)
    # How often each email (lowercased) was written by a batch subscribe: more than once means
    # it was sent twice (the fault benchmarks and tests count them).
    batch_writes: Counter[str] = field(default_factory=Counter)
    spec_violations: list[str] = field(default_factory=list)
    active: Counter[str] = field(default_factory=Counter)
    max_concurrency: int = 0
    concurrency_rejections: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))

    @property
    def account(self) -> dict[str, Any]:
        """The default account's `GET /` answer."""
        return self.accounts[DEFAULT_ACCOUNT_ID].info

    @property
    def forgotten_emails(self) -> set[str]:
        """The default account's addresses refused in all its audiences."""
        return self.accounts[DEFAULT_ACCOUNT_ID].forgotten_emails

    @property
    def compliance_emails(self) -> set[str]:
        """The default account's addresses in compliance state."""
        return self.accounts[DEFAULT_ACCOUNT_ID].compliance_emails

    @property
    def segment_rejected_emails(self) -> set[str]:
        """The default account's addresses the static-segment endpoint refuses."""
        return self.accounts[DEFAULT_ACCOUNT_ID].segment_rejected_emails

    def add_account(
        self, api_key: str, *, account_id: str | None = None, name: str | None = None
    ) -> MailchimpAccount:
        """Register `api_key` as a key of the account `account_id` (created, named `name`, if
        new; a random id if None). A key registered the other ways belongs to the default
        account."""
        account_id = account_id or secrets.token_hex(13)[:25]
        account = self.accounts.get(account_id)
        if account is None:
            account = MailchimpAccount(account_info(account_id, name or f"Account {account_id}"))
            self.accounts[account_id] = account
        self.api_keys.add(api_key)
        if account_id == DEFAULT_ACCOUNT_ID:
            self.key_accounts.pop(api_key, None)
        else:
            self.key_accounts[api_key] = account_id
        return account

    def account_of(self, api_key: str) -> MailchimpAccount:
        return self.accounts[self.key_accounts.get(api_key, DEFAULT_ACCOUNT_ID)]

    def lists_of(self, account: MailchimpAccount) -> list[MailchimpList]:
        return [lst for lst in self.lists.values() if lst.account_id == account.id]

    def forgotten(self, lst: MailchimpList, email: str) -> bool:
        """Whether Mailchimp refuses to add `email` to `lst` again (deleted permanently there,
        or refused in every audience of the list's account)."""
        key = email.lower()
        return key in lst.forgotten or key in self.accounts[lst.account_id].forgotten_emails

    def next_id(self) -> int:
        return next(self._ids)

    # -- seeding helpers ------------------------------------------------------------------------

    def create_list(
        self, name: str, list_id: str | None = None, *, account_id: str = DEFAULT_ACCOUNT_ID
    ) -> MailchimpList:
        if account_id not in self.accounts:
            raise KeyError(f"no Mailchimp account {account_id!r} (add_account first)")
        lst = MailchimpList(
            id=list_id or secrets.token_hex(5),
            name=name,
            web_id=self.next_id(),
            body={},
            date_created=now(),
            account_id=account_id,
        )
        for tag, label, kind in (
            ("FNAME", "First Name", "text"),
            ("LNAME", "Last Name", "text"),
            ("ADDRESS", "Address", "address"),
            ("PHONE", "Phone Number", "phone"),
            ("BIRTHDAY", "Birthday", "birthday"),
        ):
            self._add_merge_field(lst, tag, label, kind)
        self.lists[lst.id] = lst
        return lst

    def _add_merge_field(
        self, lst: MailchimpList, tag: str, name: str, kind: str
    ) -> dict[str, Any]:
        item = {
            "merge_id": len(lst.merge_fields) + 1,
            "tag": tag,
            "name": name,
            "type": kind,
            "required": False,
            "default_value": "",
            "public": False,
            "display_order": len(lst.merge_fields) + 1,
            "options": {},
            "help_text": "",
            "list_id": lst.id,
        }
        lst.merge_fields.append(item)
        return item

    def seed_member(
        self,
        list_id: str,
        email: str,
        *,
        status: str = "subscribed",
        merge_fields: dict[str, Any] | None = None,
        tags: list[str] | tuple[str, ...] = (),
        self_unsubscribed: bool = False,
    ) -> Member:
        lst = self.lists[list_id]
        member = self._new_member(email, status)
        member.merge_fields.update(merge_fields or {})
        member.self_unsubscribed = self_unsubscribed
        for tag in tags:
            member.tags[tag] = self._tag_id(lst, tag)
        lst.members[member.id] = member
        lst.version += 1
        return member

    def member_action(
        self, list_id: str, email: str, action: str, *, at: str | None = None
    ) -> Member:
        """What a subscriber or an admin does inside Mailchimp (no webhook is sent here; a test
        sends, delays or loses it): `unsubscribe` (the person, via the link: a compliance
        state afterwards), `admin_unsubscribe`, `archive`, `clean` (hard bounce), `pending`
        (double opt-in mail sent), `subscribe` (the person signs up again), `delete` (an admin
        deletes the member permanently: gone from the audience)."""
        lst = self.lists[list_id]
        member = lst.members.get(subscriber_hash(email)) or self.seed_member(list_id, email)
        if action == "delete":
            del lst.members[member.id]
            lst.version += 1
            return member
        status = {
            "unsubscribe": "unsubscribed",
            "admin_unsubscribe": "unsubscribed",
            "archive": "archived",
            "clean": "cleaned",
            "pending": "pending",
            "subscribe": "subscribed",
        }[action]
        member.status = status
        member.self_unsubscribed = action == "unsubscribe"
        member.last_changed = at or now()
        lst.version += 1
        return member

    def _new_member(self, email: str, status: str) -> Member:
        stamp = now()
        return Member(
            email=email.strip(),
            status=status,
            merge_fields={},
            tags={},
            unique_email_id=secrets.token_hex(5),
            web_id=self.next_id(),
            contact_id=secrets.token_hex(16),
            timestamp_signup=stamp,
            last_changed=stamp,
        )

    def _tag_id(self, lst: MailchimpList, name: str) -> int:
        if name not in lst.tag_ids:
            lst.tag_ids[name] = self.next_id()
            lst.tag_created[lst.tag_ids[name]] = now()
        return lst.tag_ids[name]

    async def pause(self, items: int = 0) -> None:
        await sleep_for(self.latency_s, self.latency_per_item_s, items)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": dict(self.request_counts),
            "total_requests": sum(self.request_counts.values()),
            "batch_writes": sum(self.batch_writes.values()),
            "batch_writes_repeated": sum(1 for n in self.batch_writes.values() if n > 1),
            "spec_violations": len(self.spec_violations),
            "spec_violation_samples": self.spec_violations[-20:],
            "max_concurrency": self.max_concurrency,
            # "changed since" member listings by the time of the change (the confirmation
            # reads): pages read, and how many of them from offset 0.
            "changed_pages": len(self.changed_listings),
            "changed_pages_from_start": sum(1 for x in self.changed_listings if x[1] == 0),
            "concurrency_rejections": self.concurrency_rejections,
            "faults_pending": len(self.faults),
        }
