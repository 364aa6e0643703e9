"""The one interface the sync code uses, whichever newsletter service is behind it.

Concrete clients live in `providers.mailchimp` and `providers.brevo`. Business code imports only
from this module; the one place in `app/` that names a provider package is the factory
(`app/connections/factory.py`, tests/foundation/test_provider_rule.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field


def normalise_email(raw: str) -> str:
    """Email identity: trimmed and case-insensitive (local part included, as providers do)."""
    return raw.strip().lower()


class ProviderName(StrEnum):
    mailchimp = "mailchimp"
    brevo = "brevo"


# ---------------------------------------------------------------------------------------------
# Errors: a three-class taxonomy shared by both providers (each subclasses them).
# ---------------------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base of every provider failure. `message` is safe to show to a user (no secrets)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str | None = None,
        error_body: object | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.endpoint = endpoint
        self.error_body = error_body


class ProviderTransientError(ProviderError):
    """429, 5xx, network errors, Mailchimp's bodiless 403 under throttling: retry later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ProviderRequestError(ProviderError):
    """A permanent 4xx: retrying the same request cannot succeed."""


class ProviderAuthError(ProviderRequestError):
    """The API key is wrong, revoked or lacks permissions."""


class ProviderLimitError(ProviderRequestError):
    """An account limit blocks the operation (e.g. Mailchimp free plan's single audience)."""


# ---------------------------------------------------------------------------------------------
# Data exchanged with the sync code.
# ---------------------------------------------------------------------------------------------


class AccountInfo(BaseModel):
    account_id: str
    account_name: str
    email: str | None = None
    language: str | None = None  # e.g. "de", "en": used to pick attribute names and greetings


class ListInfo(BaseModel):
    id: str
    name: str
    created: bool = False
    member_count: int | None = None


class FieldMapping(BaseModel):
    """Provider field (merge field tag / attribute name) for each contact property we write.

    A value of None means the account has no such field and we must not write it.
    """

    first_name: str | None = None
    last_name: str | None = None
    salutation: str | None = None
    greeting: str | None = None


class ContactData(BaseModel):
    """One contact as the connector wants it to look at the provider."""

    email: str  # normalised (trimmed, lower-cased)
    first_name: str = ""
    last_name: str = ""
    salutation: str = ""  # onOffice `Anrede`, e.g. "Herr", "Frau"
    greeting: str = ""  # e.g. "Sehr geehrter Herr Müller"
    tags: list[str] = Field(default_factory=list)
    subscribed: bool = True
    # A fresh consent after an opt-out at the provider: lift it (Brevo: the blacklist).
    resubscribe: bool = False
    external_id: str | None = None  # onOffice address id, for correlation only


class UpsertOutcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    # The provider accepted the contact but does not say whether it was created or updated
    # (Brevo's asynchronous import).
    synced = "synced"
    rejected = "rejected"


class UpsertResult(BaseModel):
    email: str
    outcome: UpsertOutcome
    provider_id: str | None = None
    reason: str | None = None  # for rejected: the provider's reason, user-readable
    # The contact's state at the provider after the write, where the answer tells it (a kept
    # opt-out shows here as e.g. "unsubscribed").
    status: str | None = None
    # With `upsert_contacts(..., defer_tags=True)`: the contact's tags the provider still
    # lacks; the caller adds them later with `add_tags` (in bulk across many batches).
    missing_tags: list[str] = Field(default_factory=list)


class ProviderContact(BaseModel):
    """A contact as read back from the provider."""

    email: str
    provider_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    subscribed: bool | None = None
    status: str | None = None  # provider's raw status (subscribed, unsubscribed, cleaned, ...)
    tags: list[str] = Field(default_factory=list)
    # When the provider last changed the contact (Mailchimp `last_changed`, Brevo `modifiedAt`).
    last_changed: datetime | None = None
    # Brevo: blocked for every list (`emailBlacklisted`); None where the provider has no such flag.
    blacklisted: bool | None = None
    # Whether the contact is (still) in the connection's list, where the provider lists
    # contacts outside it (Brevo's account-wide reads); None where every contact read belongs
    # to the list (Mailchimp members).
    in_list: bool | None = None
    # When it signed up (Mailchimp `timestamp_opt`, Brevo `createdAt`), where the read asked.
    opted_in_at: datetime | None = None


class WebhookInfo(BaseModel):
    id: str
    url: str


class WebhookSetup(BaseModel):
    """The webhook the connector wants at the provider (`NewsletterProvider.webhook_setup`),
    in the provider's own event and source names."""

    url: str
    # Brevo's bearer secret ("" where the URL alone carries the secret: Mailchimp).
    token: str = ""
    # Events that must be on.
    events: frozenset[str]
    # Wanted, but an account may refuse them (Brevo's contact events): missing is no drift.
    optional: frozenset[str] = frozenset()
    # Events that must be off: an optional activity switched off in the connection.
    off: frozenset[str] = frozenset()
    # Mailchimp's sources: user and admin on, `api` off (no echo of our own writes).
    sources: dict[str, bool] = Field(default_factory=dict)

    @property
    def wanted_events(self) -> frozenset[str]:
        return self.events | self.optional


class WebhookState(BaseModel):
    """A webhook as the provider shows it."""

    id: str
    url: str
    events: frozenset[str] = frozenset()
    sources: dict[str, bool] = Field(default_factory=dict)
    # The bearer token as the provider shows it; None where it shows none (nothing to compare).
    token: str | None = None


class ProviderEventType(StrEnum):
    subscribe = "subscribe"
    unsubscribe = "unsubscribe"
    profile = "profile"  # profile data changed at the provider
    email_changed = "email_changed"
    deleted = "deleted"  # contact deleted or archived at the provider
    cleaned = "cleaned"  # Mailchimp cleaned (bounced) address
    delivered = "delivered"
    opened = "opened"
    clicked = "clicked"
    hard_bounce = "hard_bounce"
    ignored = "ignored"  # parsed but irrelevant (e.g. Mailchimp "Archive All")


class ProviderEvent(BaseModel):
    """One normalised provider webhook event."""

    type: ProviderEventType
    email: str
    new_email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    provider_id: str | None = None
    list_id: str | None = None
    occurred_at: datetime | None = None
    campaign: str | None = None  # campaign id/subject, for activity notes
    url: str | None = None  # clicked link
    reason: str | None = None
    source: str | None = None  # Mailchimp "user"/"admin"/"api"
    # An onOffice-side opt-out the connector carries to the person's other addresses (raw_type
    # "person"): the onOffice address whose No/Cancellation decided it.
    address_id: int | None = None
    raw_type: str  # the provider's own event name
    dedupe_key: str  # stable across redeliveries of the same event


@dataclass
class ListingCursor:
    """How far one caller's (a drain job's) `read_states` listings got: all listed from
    `since`, the next offset per listing. A read with the cursor lists from its `since` and goes
    on where the last one stopped, so a burst confirmed batch by batch reads each page once."""

    since: datetime
    offsets: dict[int, int] = field(default_factory=dict)
    # Where each contact was listed: (listing, offset), for a successor's cursor.
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The interface.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """How a provider delivers its webhooks to us, so the app registers one route per provider
    without naming any: the body format, the auth, the answer after which the provider delivers
    again, and the parser of one delivery."""

    # "form": `application/x-www-form-urlencoded` pairs; "json": one JSON value.
    body: Literal["form", "json"]
    # The answer that makes the provider deliver again (what it does on others is drop the event).
    retry_status: int
    # (form pairs or the JSON value, our list id) -> the events. ValueError for a delivery
    # that is malformed or carries no usable event (its message says what is missing).
    parse: Callable[[Any, str | None], list[ProviderEvent]]
    # `Authorization: Bearer <secret>` comes with every delivery (a secret apart from the URL).
    bearer_secret: bool = False
    # The provider GETs the URL (and may POST an empty body) to check it when the webhook is
    # created, before our transaction has committed: answered for any token.
    url_check: bool = False
    # For the OpenAPI page.
    summary: str = ""
    description: str = ""
    body_schema: Mapping[str, Any] = field(default_factory=dict)
    body_required: bool = True

    @property
    def content_type(self) -> str:
        return "application/x-www-form-urlencoded" if self.body == "form" else "application/json"


@runtime_checkable
class NewsletterProvider(Protocol):
    """What the connector needs from a newsletter service. All methods retry transient errors
    internally (bounded) and raise ProviderTransientError when retries are exhausted."""

    name: ProviderName
    # For messages ("Mailchimp") and the provider's service status page.
    label: str
    status_page: str
    # Largest number of contacts `upsert_contacts` accepts in one call.
    max_batch_size: int
    # Whether contacts carry tags (Mailchimp) or not (Brevo).
    supports_tags: bool
    # Whether one user action can remove every contact at once, one webhook each (Mailchimp's
    # "Archive All"): such bursts are held for a person to confirm.
    bulk_removal_webhooks: bool
    # Whether its webhooks belong to one list, so that each event names the list it was made
    # at (Mailchimp); Brevo's are account-wide.
    webhooks_per_list: bool
    # How its webhooks arrive (the app's webhook routes are built from it).
    webhook_delivery: WebhookDelivery

    async def check_key(self) -> AccountInfo: ...

    async def ensure_list(self, name: str = "onoffice") -> ListInfo: ...

    async def ensure_fields(self, list_id: str) -> FieldMapping: ...

    async def upsert_contacts(
        self,
        list_id: str,
        contacts: Sequence[ContactData],
        mapping: FieldMapping,
        *,
        defer_tags: bool = False,
    ) -> list[UpsertResult]:
        """Create or update the contacts (subscribed unless `subscribed` is False); one result
        per input contact, in input order. Never raises for per-contact rejections. With
        `defer_tags`, tags the provider lacks are not set but reported (`missing_tags`)."""
        ...

    async def add_tags(self, list_id: str, missing: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """Add each email to its tags, in bulk (Mailchimp: one static-segment request per tag
        and 500 members); returns a reason per email whose tags could not be set. Idempotent."""
        ...

    async def upsert_contact(
        self, list_id: str, contact: ContactData, mapping: FieldMapping
    ) -> UpsertResult: ...

    async def set_subscription(self, list_id: str, email: str, subscribed: bool) -> None: ...

    async def change_email(self, list_id: str, old_email: str, new_email: str) -> None: ...

    async def archive_contact(self, list_id: str, email: str) -> None: ...

    async def delete_contact_permanently(self, list_id: str, email: str) -> None:
        """Erasure on a person's request (GDPR Art. 17): the contact is gone at the provider,
        not only unsubscribed; a contact that does not exist is no error."""
        ...

    async def get_contact(self, list_id: str, email: str) -> ProviderContact | None: ...

    async def read_states(
        self,
        list_id: str,
        emails: Sequence[str],
        since: datetime | None,
        cursor: ListingCursor | None = None,
    ) -> dict[str, ProviderContact | None]:
        """The provider's current state of each email for the list (status, `last_changed`;
        no tags or names): None when the provider has no such contact. Read in bulk: a
        handful one read each, more through the contacts changed since `since` (every
        status, Mailchimp's archived included; with a `cursor`, since its `since` and on from
        its offsets, which the read advances) and one read each for those it did not return
        (`providers._states`). The answer may hold other contacts the bulk read saw.
        Used to confirm a webhook against the provider's state before acting on it."""
        ...

    async def set_tags(
        self, list_id: str, email: str, add: Sequence[str], remove: Sequence[str]
    ) -> None: ...

    def iter_contacts(
        self, list_id: str, *, start: int = 0, archived: bool = False
    ) -> AsyncIterator[ProviderContact]:
        """Every contact of the list from offset `start`, with tags, status and `last_changed`,
        page by page (memory stays flat). `archived=True`: the archived members, where the
        provider hides them from the normal listing (Mailchimp; Brevo yields nothing)."""
        ...

    def iter_list_state(
        self,
        list_id: str,
        *,
        concurrency: int = 4,
        start: int = 0,
        expected_total: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[list[ProviderContact]]:
        """The whole list once from offset `start`, as pages of contacts with status, last
        change and tags, `concurrency` pages in flight at a time (within the provider's limits,
        leaving room for writes). Pages are yielded in offset order (a read can resume after
        the pages it stored); a contact changed during the read may appear twice (the later
        page wins) and one added during it may be missed. `expected_total` (the list's size
        last time) lets the pages up to it start with the first one; once `stop()` is true no
        further page is requested (those in flight are still yielded). Archived members
        (Mailchimp) are not included: `iter_contacts(archived=True)` reads them."""
        ...

    async def count_contacts(self, list_id: str) -> int: ...

    async def applied_since(
        self, list_id: str, emails: Sequence[str], since: datetime
    ) -> dict[str, ProviderContact] | None:
        """Of these emails, the contacts the provider changed at or after `since` (status,
        tags): a batch sent at `since` whose answer was lost is checked with it before it is
        resent. None when checking costs more than resending (Brevo: one import request;
        Mailchimp: more than a few pages changed since)."""
        ...

    async def recent_opt_outs(self, list_id: str, since: datetime) -> set[str]:
        """Emails that opted out (or are waiting for a double opt-in) since `since`, where a
        bulk write could otherwise undo that (Mailchimp's batch subscribe sets the status of
        existing members); empty where bulk writes never lift an opt-out (Brevo's import)."""
        ...

    async def count_subscribed(self, list_id: str) -> int:
        """The provider's own count of contacts of the list that receive campaigns."""
        ...

    def changed_since(self, list_id: str, since: datetime) -> AsyncIterator[ProviderContact]:
        """Every contact whose state the provider changed at or after `since` (the periodic
        reconciliation), in every state: Mailchimp's members of the list incl. archived and
        cleaned (two reads when nothing changed), Brevo's contacts of the account (one read;
        `in_list` tells a removal from the list; `modifiedAt` also moves on list touches, so
        some contacts come although nothing that matters changed)."""
        ...

    def iter_campaign_recipients(self, campaign_id: str) -> AsyncIterator[str]:
        """Emails a sent campaign reached, where the provider reports delivery per campaign
        (Mailchimp) rather than per recipient event (Brevo: yields nothing)."""
        ...

    def webhook_setup(
        self, url: str, token: str, activities: Mapping[str, bool] | None = None
    ) -> WebhookSetup:
        """The webhook the connector wants: the events its consent rules need, plus the
        optional ones the connection's activity settings (`delivered`, `opened`, `clicked`,
        `hard_bounce`) switch on (None: all of them), the rest of those off."""
        ...

    async def register_webhook(
        self, list_id: str, url: str, token: str, *, activities: Mapping[str, bool] | None = None
    ) -> WebhookInfo:
        """Ensure one webhook for `url` as `webhook_setup` describes it (an existing one is
        updated, an outdated one replaced)."""
        ...

    async def list_webhooks(self, list_id: str) -> list[WebhookState]:
        """The webhooks the provider has for the list (Brevo: the account's marketing ones)."""
        ...

    async def update_webhook(self, list_id: str, webhook_id: str, wanted: WebhookSetup) -> None:
        """Set the webhook's events (and Mailchimp's sources) to `wanted` in place."""
        ...

    async def remove_webhook(self, list_id: str, webhook_id: str) -> None: ...

    async def aclose(self) -> None: ...
