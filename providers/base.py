"""The one interface the sync code uses, whichever newsletter service is behind it.

Concrete clients live in `providers.mailchimp` and `providers.brevo`. Business code imports only
from this module; the one place in `app/` that names a provider package is the factory
(`app/connections/factory.py`, tests/foundation/test_provider_rule.py). The error taxonomy
(`providers.errors`), the data exchanged (`providers.types`) and the boundary's codes
(`providers.codes`: `RejectReason`, `ProviderState`) live in their own modules and are
re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from providers.codes import ProviderState, RejectReason
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderLimitError,
    ProviderRequestError,
    ProviderTransientError,
)
from providers.types import (
    AccountInfo,
    ContactData,
    FieldMapping,
    ListInfo,
    ListingCursor,
    ProviderContact,
    ProviderEvent,
    ProviderEventType,
    UpsertOutcome,
    UpsertResult,
    WebhookDelivery,
    WebhookInfo,
    WebhookSetup,
    WebhookState,
)

__all__ = [
    "AccountInfo",
    "ContactData",
    "FieldMapping",
    "ListInfo",
    "ListingCursor",
    "NewsletterProvider",
    "ProviderAuthError",
    "ProviderContact",
    "ProviderError",
    "ProviderEvent",
    "ProviderEventType",
    "ProviderLimitError",
    "ProviderName",
    "ProviderRequestError",
    "ProviderState",
    "ProviderTransientError",
    "RejectReason",
    "UpsertOutcome",
    "UpsertResult",
    "WebhookDelivery",
    "WebhookInfo",
    "WebhookSetup",
    "WebhookState",
    "normalise_email",
]


def normalise_email(raw: str) -> str:
    """Email identity: trimmed and case-insensitive (local part included, as providers do)."""
    return raw.strip().lower()


class ProviderName(StrEnum):
    mailchimp = "mailchimp"
    brevo = "brevo"


# ---------------------------------------------------------------------------------------------
# The interface.
# ---------------------------------------------------------------------------------------------


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
