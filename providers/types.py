"""The data exchanged between the sync code and a provider; re-exported by `providers.base`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.codes import ProviderState, RejectReason


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
    # A field that does not exist (the former `reason`) is an error, not silently dropped.
    model_config = ConfigDict(extra="forbid")

    email: str
    outcome: UpsertOutcome
    provider_id: str | None = None
    # For rejected: why, as a code the app renders in the reader's language ...
    code: RejectReason | None = None
    # ... and the provider's own words, shown only as the labelled original.
    detail: str | None = None
    # The contact's state at the provider after the write, where the answer tells it (a kept
    # opt-out shows here as e.g. `ProviderState.unsubscribed`).
    status: ProviderState | None = None
    # With `upsert_contacts(..., defer_tags=True)`: the contact's tags the provider still
    # lacks; the caller adds them later with `add_tags` (in bulk across many batches).
    missing_tags: list[str] = Field(default_factory=list)

    @classmethod
    def refused(
        cls, email: str, code: RejectReason, detail: str | None, provider_id: str | None = None
    ) -> UpsertResult:
        """A rejected contact: the code and the provider's own words."""
        return cls(
            email=email,
            outcome=UpsertOutcome.rejected,
            code=code,
            detail=detail,
            provider_id=provider_id,
        )


class ProviderContact(BaseModel):
    """A contact as read back from the provider."""

    email: str
    provider_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    subscribed: bool | None = None
    status: ProviderState | None = None  # the provider's status, mapped by its table
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
