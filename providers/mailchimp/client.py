"""Mailchimp Marketing API v3 client implementing `providers.base.NewsletterProvider`.

Design notes (see docs/mailchimp-api.md for the sources):
- Bulk writes use the synchronous batch subscribe `POST /lists/{id}` (<= 500 members), which
  answers per address. It does not set tags, so afterwards the members whose returned tags lack
  a wanted one are added to that tag in bulk: tags are static segments, and
  `POST /lists/{id}/segments/{segment_id}` takes 500 addresses, so a batch costs one request
  per missing tag instead of one per member. Addresses the segment call refuses, and every
  address of a tag whose segment call fails, go through the member tags endpoint instead.
  An unchanged contact costs no extra request.
- Every request holds a slot of the `ConcurrencyLimiter` for the key (Mailchimp allows 10
  simultaneous connections per key), retries transient failures with jittered exponential
  backoff (Retry-After honoured, capped) and never retries a permanent 4xx.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from tenacity import wait_random_exponential

from providers._http import HttpOwner, Transport
from providers._retry import RetryPolicy
from providers.base import (
    AccountInfo,
    ContactData,
    FieldMapping,
    ListInfo,
    ListingCursor,
    ProviderContact,
    ProviderName,
    RejectReason,
    UpsertOutcome,
    UpsertResult,
    WebhookInfo,
    WebhookSetup,
    WebhookState,
    normalise_email,
)
from providers.limits import ConcurrencyLimiter, LocalConcurrencyLimiter
from providers.mailchimp import audience, errors, reads
from providers.mailchimp.api import PAGE_SIZE, MailchimpApi, parse_api_key, subscriber_hash
from providers.mailchimp.audience import MailchimpListDefaults
from providers.mailchimp.batch import send_batch
from providers.mailchimp.codes import batch_rejection, member_state, refusal
from providers.mailchimp.errors import (
    MailchimpNotFoundError,
    MailchimpRequestError,
)
from providers.mailchimp.tags import SegmentCache, Tags, missing_tags
from providers.mailchimp.webhooks import DELIVERY

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL_TEMPLATE = "https://{dc}.api.mailchimp.com/3.0"
BATCH_SIZE = 500  # Mailchimp's batch subscribe maximum


class MailchimpClient(HttpOwner):
    """One Mailchimp account (API key). Long-lived: create once, `aclose()` at shutdown.

    `http` may be a shared client (not closed by `aclose`); `limiter` should be shared by every
    client of the deployment (a `RedisConcurrencyLimiter` across processes). Without one, this
    client keeps itself to `max_concurrent` requests. `segment_cache` should be shared by the
    clients of a process (tag ids outlive one job); without one, this client keeps its own.
    """

    name = ProviderName.mailchimp
    label = "Mailchimp"
    status_page = "https://status.mailchimp.com"
    max_batch_size = BATCH_SIZE
    supports_tags = True
    # "Archive All" in Mailchimp sends one removal webhook per contact: bursts are held.
    bulk_removal_webhooks = True
    webhooks_per_list = True  # one webhook per audience: an event names the list it was made at
    webhook_delivery = DELIVERY

    def __init__(
        self,
        *,
        api_key: str,
        base_url_template: str = DEFAULT_BASE_URL_TEMPLATE,
        http: httpx.AsyncClient | None = None,
        limiter: ConcurrencyLimiter | None = None,
        max_retries: int = 5,
        timeout: float = 30.0,
        max_concurrent: int = 8,
        backoff_base_s: float = 0.5,
        max_backoff_s: float = 30.0,
        page_size: int = PAGE_SIZE,
        list_defaults: MailchimpListDefaults | None = None,
        segment_cache: SegmentCache | None = None,
        max_batch_size: int = BATCH_SIZE,
    ) -> None:
        # Contacts per full-sync job (SYNC_BATCH_SIZE): at most one batch subscribe request.
        self.max_batch_size = max(1, min(max_batch_size, BATCH_SIZE))
        api_key = api_key.strip()
        dc = parse_api_key(api_key)
        self._api_key = api_key
        self.base_url = base_url_template.replace("{dc}", dc).rstrip("/")
        self._auth = httpx.BasicAuth("connector", api_key)
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=self._timeout)
        self._limiter: ConcurrencyLimiter = limiter or LocalConcurrencyLimiter(max_concurrent)
        self._retry = RetryPolicy(
            max_retries=max_retries,
            backoff=wait_random_exponential(multiplier=backoff_base_s, max=max_backoff_s),
            max_wait=max_backoff_s,
            logger=logger,
            log_event="mailchimp.retry",
            log_extra=lambda error: {
                "status_code": getattr(error, "status_code", None),
                "endpoint": getattr(error, "endpoint", None),
            },
        )
        self._transport = Transport(
            provider="Mailchimp",
            base_url=self.base_url,
            http=self._http,
            timeout=self._timeout,
            retry=self._retry,
            secrets=[api_key],
            error_from_response=errors.from_response,
            transient=errors.transient,
            gate=lambda _path: self._limiter.slot(self._api_key),
            auth=self._auth,
        )
        self._api = MailchimpApi(self._transport, page_size=page_size)
        self._page_size = self._api.page_size
        self._list_defaults = list_defaults or MailchimpListDefaults()
        self._language: str | None = None
        # (key, list id) -> tag name -> static segment id, shared by the clients of a process.
        self._tags = Tags(self._api, api_key=api_key, segments=segment_cache or SegmentCache())

    # ------------------------------------------------------------------------------------------
    # Account, audience, merge fields, webhook (providers.mailchimp.audience)
    # ------------------------------------------------------------------------------------------

    async def check_key(self) -> AccountInfo:
        account = await audience.check_key(self._api)
        self._language = account.language
        return account

    async def ensure_list(self, name: str = "onoffice") -> ListInfo:
        """Find the audience named exactly `name`, or create it.

        Raises MailchimpLimitError when the plan allows no further audience (free plan).
        """
        return await audience.ensure_list(self._api, name, self._list_defaults, self._language)

    async def ensure_fields(self, list_id: str) -> FieldMapping:
        return await audience.ensure_fields(self._api, list_id, self._language)

    def webhook_setup(
        self, url: str, token: str, activities: Mapping[str, bool] | None = None
    ) -> WebhookSetup:
        """`token` is unused: Mailchimp cannot send credentials, so the secret is in the URL."""
        return audience.webhook_setup(url, activities)

    async def register_webhook(
        self, list_id: str, url: str, token: str, *, activities: Mapping[str, bool] | None = None
    ) -> WebhookInfo:
        return await audience.register_webhook(
            self._api, list_id, self.webhook_setup(url, token, activities)
        )

    async def list_webhooks(self, list_id: str) -> list[WebhookState]:
        return await audience.list_webhooks(self._api, list_id)

    async def update_webhook(self, list_id: str, webhook_id: str, wanted: WebhookSetup) -> None:
        await audience.update_webhook(self._api, list_id, webhook_id, wanted)

    async def remove_webhook(self, list_id: str, webhook_id: str) -> None:
        await audience.remove_webhook(self._api, list_id, webhook_id)

    async def set_tags(
        self, list_id: str, email: str, add: Sequence[str], remove: Sequence[str]
    ) -> None:
        await self._tags.set_tags(list_id, email, add, remove)

    # ------------------------------------------------------------------------------------------
    # Members
    # ------------------------------------------------------------------------------------------

    async def upsert_contacts(
        self,
        list_id: str,
        contacts: Sequence[ContactData],
        mapping: FieldMapping,
        *,
        defer_tags: bool = False,
    ) -> list[UpsertResult]:
        """Batch subscribe (create or update, status per contact), then add missing tags (or,
        with `defer_tags`, report them in `missing_tags` for a later `add_tags`)."""
        by_email: dict[str, UpsertResult] = {}
        unique: dict[str, ContactData] = {}
        for contact in contacts:
            # Later duplicates win; Mailchimp rejects a batch listing an address twice.
            unique[normalise_email(contact.email)] = contact
        items = list(unique.items())
        for start in range(0, len(items), BATCH_SIZE):
            chunk = dict(items[start : start + BATCH_SIZE])
            by_email.update(await self._batch_subscribe(list_id, chunk, mapping, defer_tags))
        return [by_email[normalise_email(contact.email)] for contact in contacts]

    async def _batch_subscribe(
        self,
        list_id: str,
        chunk: dict[str, ContactData],
        mapping: FieldMapping,
        defer_tags: bool = False,
    ) -> dict[str, UpsertResult]:
        body = {
            "update_existing": True,
            "members": [
                {
                    "email_address": email,
                    "status": _status(contact.subscribed),
                    "merge_fields": _merge_fields(contact, mapping),
                }
                for email, contact in chunk.items()
            ],
        }
        answer = await send_batch(self._api, self._retry, list_id, body, chunk)
        results: dict[str, UpsertResult] = {}
        members: list[tuple[str, dict[str, Any]]] = []
        for key, outcome in (
            ("new_members", UpsertOutcome.created),
            ("updated_members", UpsertOutcome.updated),
        ):
            for member in answer.get(key) or []:
                email = str(member.get("email_address", "")).lower()
                results[email] = UpsertResult(
                    email=email, outcome=outcome, provider_id=member.get("id")
                )
                members.append((email, member))
        for error in answer.get("errors") or []:
            email = str(error.get("email_address", "")).lower()
            results[email] = UpsertResult.refused(email, *batch_rejection(error))
        missing = {
            email: tags
            for email, member in members
            if email in chunk and (tags := missing_tags(member, chunk[email].tags))
        }
        if defer_tags:
            for email, tags in missing.items():
                results[email].missing_tags = tags
            missing = {}
        for email, failure in (await self._tags.add_in_bulk(list_id, missing)).items():
            known = results[email].provider_id
            results[email] = UpsertResult.refused(email, RejectReason.tags, failure, known)
        # Mailchimp reports every address in one of the three arrays; an address missing from all
        # of them was accepted without change.
        return {
            email: results.get(email)
            or UpsertResult(
                email=email, outcome=UpsertOutcome.unchanged, provider_id=subscriber_hash(email)
            )
            for email in chunk
        }

    async def add_tags(self, list_id: str, missing: Mapping[str, Sequence[str]]) -> dict[str, str]:
        """Add each member (by email) to the given tags in bulk; a reason per email whose tags
        could not be set (see `_add_tags_in_bulk`). Adding a member twice is harmless."""
        return await self._tags.add_in_bulk(list_id, missing)

    async def upsert_contact(
        self,
        list_id: str,
        contact: ContactData,
        mapping: FieldMapping,
        *,
        keep_status: bool | None = None,
    ) -> UpsertResult:
        """PUT by subscriber hash. With `keep_status`, an existing member's status is untouched
        (only `status_if_new` is sent); by default it is kept unless the contact is a fresh
        consent (`resubscribe`) or an unsubscribe, so an opt-out the connector has not heard of
        is never undone. Compliance/forgotten/invalid become `rejected`."""
        email = normalise_email(contact.email)
        status = _status(contact.subscribed)
        if keep_status is None:
            keep_status = contact.subscribed and not contact.resubscribe
        body: dict[str, Any] = {
            "email_address": email,
            "status_if_new": status,
            "merge_fields": _merge_fields(contact, mapping),
        }
        if not keep_status:
            body["status"] = status
        try:
            member = await self._api.request(
                "PUT", f"/lists/{list_id}/members/{subscriber_hash(email)}", json=body
            )
        except MailchimpNotFoundError:
            raise
        except MailchimpRequestError as exc:
            if exc.status_code != 400:
                raise
            return UpsertResult.refused(email, *refusal(exc))
        provider_id = member.get("id")
        failure = await self._tags.tag_one(list_id, email, missing_tags(member, contact.tags))
        if failure is not None:
            return UpsertResult.refused(email, RejectReason.tags, failure, provider_id)
        # PUT does not say whether it created or updated the member.
        return UpsertResult(
            email=email,
            outcome=UpsertOutcome.synced,
            provider_id=provider_id,
            status=member_state(member.get("status")),
        )

    async def set_subscription(self, list_id: str, email: str, subscribed: bool) -> None:
        """Subscribe (creating the member if needed) or unsubscribe (no-op if unknown)."""
        path = f"/lists/{list_id}/members/{subscriber_hash(email)}"
        status = _status(subscribed)
        if subscribed:
            body = {
                "email_address": normalise_email(email),
                "status_if_new": status,
                "status": status,
            }
            await self._api.request("PUT", path, json=body)
            return
        try:
            await self._api.request("PATCH", path, json={"status": status})
        except MailchimpNotFoundError:
            logger.info("mailchimp.unsubscribe_unknown_member", extra={"list_id": list_id})

    async def change_email(self, list_id: str, old_email: str, new_email: str) -> None:
        """PATCH the member found under the *old* hash (hashing the new one would duplicate)."""
        await self._api.request(
            "PATCH",
            f"/lists/{list_id}/members/{subscriber_hash(old_email)}",
            json={"email_address": normalise_email(new_email)},
        )

    async def archive_contact(self, list_id: str, email: str) -> None:
        """Archive (Mailchimp's DELETE): reversible, unlike delete-permanent. Idempotent."""
        # 404: already archived or never existed.
        with contextlib.suppress(MailchimpNotFoundError):
            await self._api.request("DELETE", f"/lists/{list_id}/members/{subscriber_hash(email)}")

    async def delete_contact_permanently(self, list_id: str, email: str) -> None:
        """GDPR erasure. The address can never be imported again; use only on request."""
        with contextlib.suppress(MailchimpNotFoundError):
            await self._api.request(
                "POST",
                f"/lists/{list_id}/members/{subscriber_hash(email)}/actions/delete-permanent",
            )

    # ------------------------------------------------------------------------------------------
    # Reads (providers.mailchimp.reads)
    # ------------------------------------------------------------------------------------------

    async def get_contact(self, list_id: str, email: str) -> ProviderContact | None:
        return await reads.get_contact(self._api, list_id, email)

    async def read_states(
        self,
        list_id: str,
        emails: Sequence[str],
        since: datetime | None,
        cursor: ListingCursor | None = None,
    ) -> dict[str, ProviderContact | None]:
        return await reads.member_states(self._api, list_id, emails, since, cursor)

    def iter_contacts(
        self, list_id: str, *, start: int = 0, archived: bool = False
    ) -> AsyncIterator[ProviderContact]:
        return reads.iter_contacts(self._api, list_id, start=start, archived=archived)

    def iter_list_state(self, list_id: str, **options: Any) -> AsyncIterator[list[ProviderContact]]:
        """See reads.iter_list_state (concurrency, start, expected_total, stop)."""
        return reads.iter_list_state(self._api, list_id, **options)

    def iter_campaign_recipients(self, campaign_id: str) -> AsyncIterator[str]:
        return reads.iter_campaign_recipients(self._api, campaign_id)

    async def count_contacts(self, list_id: str) -> int:
        return await reads.count_contacts(self._api, list_id)

    async def applied_since(
        self, list_id: str, emails: Sequence[str], since: datetime
    ) -> dict[str, ProviderContact] | None:
        return await reads.applied_since(self._api, list_id, emails, since)

    async def recent_opt_outs(self, list_id: str, since: datetime) -> set[str]:
        return await reads.recent_opt_outs(self._api, list_id, since)

    async def count_subscribed(self, list_id: str) -> int:
        return await reads.count_subscribed(self._api, list_id)

    def changed_since(self, list_id: str, since: datetime) -> AsyncIterator[ProviderContact]:
        return reads.changed_since(self._api, list_id, since)


def _status(subscribed: bool) -> str:
    return "subscribed" if subscribed else "unsubscribed"


def _merge_fields(contact: ContactData, mapping: FieldMapping) -> dict[str, str]:
    values = {
        mapping.first_name: contact.first_name,
        mapping.last_name: contact.last_name,
        mapping.salutation: contact.salutation,
        mapping.greeting: contact.greeting,
    }
    return {tag: value for tag, value in values.items() if tag}
