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

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel
from tenacity import wait_random_exponential

from providers._http import Transport
from providers._paging import offset_items, parallel_pages
from providers._retry import RetryPolicy
from providers._time import parse_iso_timestamp
from providers.base import (
    AccountInfo,
    ContactData,
    FieldMapping,
    ListInfo,
    ProviderContact,
    ProviderName,
    UpsertOutcome,
    UpsertResult,
    WebhookInfo,
)
from providers.limits import ConcurrencyLimiter, LocalConcurrencyLimiter, hash_key
from providers.mailchimp import errors
from providers.mailchimp.errors import (
    MailchimpAuthError,
    MailchimpLimitError,
    MailchimpNotFoundError,
    MailchimpRequestError,
    blocked_reason,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL_TEMPLATE = "https://{dc}.api.mailchimp.com/3.0"
BATCH_SIZE = 500  # Mailchimp's batch subscribe maximum
SEGMENT_BATCH_SIZE = 500  # members_to_add maximum of the static segment endpoint
PAGE_SIZE = 1000  # Mailchimp's maximum `count`
EMBEDDED_TAGS_MAX = 50  # member listings embed at most this many tags per member
WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
# `api: false` keeps our own writes from being echoed back as webhooks (feedback loops).
WEBHOOK_SOURCES = {"user": True, "admin": True, "api": False}

_KEY_RE = re.compile(r"(?P<secret>[0-9A-Za-z]+)-(?P<dc>[a-z]+[0-9]+)")
_MEMBER_FIELDS = "id,email_address,status,merge_fields,tags,tags_count,last_changed"
_STATE_FIELDS = "id,email_address,status,last_changed,tags,tags_count"
LIST_STATE_CONCURRENCY = 4  # pages in flight: 4 of the key's 10 connections, 6 left for writes

# Merge field tags we accept for each property; the first one is created when none exists.
_FIELD_TAGS: dict[str, tuple[str, ...]] = {
    "first_name": ("FNAME",),
    "last_name": ("LNAME",),
    "salutation": ("SALUTATION", "ANREDE"),
    "greeting": ("GREETING",),
}
_FIELD_NAMES: dict[str, dict[str, str]] = {
    "de": {
        "first_name": "Vorname",
        "last_name": "Nachname",
        "salutation": "Anrede",
        "greeting": "Briefanrede",
    },
    "en": {
        "first_name": "First Name",
        "last_name": "Last Name",
        "salutation": "Salutation",
        "greeting": "Greeting",
    },
}


class MailchimpListDefaults(BaseModel):
    """Values a new audience needs. Unset fields are taken from the account's contact data."""

    company: str | None = None
    address1: str | None = None
    city: str | None = None
    zip: str | None = None
    state: str | None = None
    country: str | None = None
    from_name: str | None = None
    from_email: str | None = None
    language: str | None = None
    permission_reminder: str = (
        "Sie erhalten diese E-Mail, weil Sie dem Newsletter-Empfang zugestimmt haben. / "
        "You are receiving this email because you opted in to our newsletter."
    )


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def parse_api_key(api_key: str) -> str:
    """Return the data centre of `<key>-<dc>`; it goes into a host name, so it is strict."""
    match = _KEY_RE.fullmatch(api_key)
    if match is None:
        raise MailchimpAuthError(
            "This is not a valid Mailchimp API key. A key looks like "
            "'0123456789abcdef0123456789abcdef-us21': letters and digits, a hyphen, then the "
            "data centre. Copy the whole key from Mailchimp (Profile > Extras > API keys)."
        )
    return match.group("dc")


class SegmentCache:
    """Static segment (tag) ids per API key and list, shared by the clients of one process.

    A client is built per job, so a cache inside the client would re-read the list's segments
    for every batch. Entries are trusted for `ttl_s`; a wanted tag missing from an entry, or a
    segment Mailchimp no longer knows, makes the client read the list again anyway.
    """

    def __init__(self, *, ttl_s: float = 900.0, max_lists: int = 1000) -> None:
        self.ttl_s = ttl_s
        self.max_lists = max_lists
        self._entries: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @staticmethod
    def _key(api_key: str, list_id: str) -> tuple[str, str]:
        return hash_key(api_key), list_id

    def get(self, api_key: str, list_id: str) -> dict[str, int] | None:
        entry = self._entries.get(self._key(api_key, list_id))
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, api_key: str, list_id: str, segments: dict[str, int]) -> None:
        key = self._key(api_key, list_id)
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_lists:
            self._entries.pop(next(iter(self._entries)))  # oldest first
        self._entries[key] = (time.monotonic(), segments)

    def forget(self, api_key: str, list_id: str) -> None:
        self._entries.pop(self._key(api_key, list_id), None)

    def lock(self, api_key: str, list_id: str) -> asyncio.Lock:
        return self._locks.setdefault(self._key(api_key, list_id), asyncio.Lock())


class MailchimpClient:
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
    ) -> None:
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
        self._page_size = max(1, min(page_size, PAGE_SIZE))
        self._list_defaults = list_defaults or MailchimpListDefaults()
        self._language: str | None = None
        # (key, list id) -> tag name -> static segment id, filled on first use; see
        # `_tag_segment_ids`.
        self._segments = segment_cache or SegmentCache()

    # ------------------------------------------------------------------------------------------
    # Account, audience, merge fields
    # ------------------------------------------------------------------------------------------

    async def check_key(self) -> AccountInfo:
        try:
            await self._request("GET", "/ping")
        except MailchimpNotFoundError as exc:
            raise MailchimpAuthError(
                "The Mailchimp API did not answer at the expected address. Check that the key "
                "ends in the right data centre (e.g. '-us21'), exactly as Mailchimp shows it.",
                status_code=exc.status_code,
                endpoint=exc.endpoint,
            ) from exc
        root = await self._request(
            "GET", "/", params={"fields": "account_id,account_name,email,contact"}
        )
        self._language = _language_of(root)
        return AccountInfo(
            account_id=str(root.get("account_id", "")),
            account_name=str(root.get("account_name", "")),
            email=root.get("email") or None,
            language=self._language,
        )

    async def ensure_list(self, name: str = "onoffice") -> ListInfo:
        """Find the audience named exactly `name`, or create it.

        Raises MailchimpLimitError when the plan allows no further audience (free plan).
        """
        lists = [
            item
            async for item in self._paginate(
                "/lists", "lists", fields="lists.id,lists.name,lists.stats.member_count"
            )
        ]
        matches = [item for item in lists if item.get("name") == name]
        if len(matches) > 1:
            raise MailchimpRequestError(
                f"Your Mailchimp account has {len(matches)} audiences named '{name}'. Rename or "
                f"delete all but one of them so the connector knows which one to use."
            )
        if matches:
            found = matches[0]
            return ListInfo(
                id=found["id"],
                name=name,
                member_count=(found.get("stats") or {}).get("member_count"),
            )
        body = await self._new_list_body(name)
        try:
            created = await self._request("POST", "/lists", json=body)
        except MailchimpAuthError as exc:
            if exc.status_code != 403 or not lists:
                raise
            others = ", ".join(f"'{item.get('name')}'" for item in lists[:3])
            raise MailchimpLimitError(
                f"Mailchimp does not allow another audience on this plan (the free plan has "
                f"one, currently {others}). Rename your existing audience to {name} in "
                f"Mailchimp (Audience > Settings > Audience name and defaults), or upgrade the "
                f"plan, then connect again.",
                status_code=exc.status_code,
                endpoint=exc.endpoint,
                error_body=exc.error_body,
            ) from exc
        return ListInfo(id=created["id"], name=name, created=True, member_count=0)

    async def _new_list_body(self, name: str) -> dict[str, Any]:
        defaults = self._list_defaults
        root = await self._request("GET", "/", params={"fields": "account_name,email,contact"})
        contact = root.get("contact") or {}
        company = defaults.company or contact.get("company") or root.get("account_name") or name
        language = defaults.language or self._language or _language_of(root) or "de"
        from_email = defaults.from_email or root.get("email")
        if not from_email:
            raise MailchimpRequestError(
                "Mailchimp needs a sender address for a new audience, and the account has no "
                "email address. Add one to your Mailchimp profile, or create the audience "
                f"'{name}' in Mailchimp yourself."
            )
        return {
            "name": name,
            "contact": {
                "company": company,
                "address1": defaults.address1 or contact.get("addr1") or "-",
                "city": defaults.city or contact.get("city") or "-",
                "state": defaults.state or contact.get("state") or "",
                "zip": defaults.zip or contact.get("zip") or "",
                "country": defaults.country or contact.get("country") or "DE",
            },
            "permission_reminder": defaults.permission_reminder,
            "campaign_defaults": {
                "from_name": defaults.from_name or company,
                "from_email": from_email,
                "subject": "",
                "language": language,
            },
            "email_type_option": False,
            "double_optin": False,
            "marketing_permissions": False,
        }

    async def ensure_fields(self, list_id: str) -> FieldMapping:
        """Find (or create as text fields) first/last name, salutation and greeting.

        A field that cannot be created (e.g. the audience's merge field limit) maps to None and
        is then not written; transient failures still raise.
        """
        existing = {
            str(item.get("tag", "")).upper()
            async for item in self._paginate(
                f"/lists/{list_id}/merge-fields", "merge_fields", fields="merge_fields.tag"
            )
        }
        names = _FIELD_NAMES.get(self._language or "", _FIELD_NAMES["en"])
        mapping: dict[str, str | None] = {}
        for prop, candidates in _FIELD_TAGS.items():
            found = next((tag for tag in candidates if tag in existing), None)
            if found is None:
                found = candidates[0]
                body = {
                    "name": names[prop],
                    "tag": found,
                    "type": "text",
                    "required": False,
                    "public": False,
                }
                try:
                    await self._request("POST", f"/lists/{list_id}/merge-fields", json=body)
                except MailchimpRequestError as exc:
                    logger.warning(
                        "mailchimp.merge_field_not_created",
                        extra={"tag": found, "reason": exc.message},
                    )
                    found = None
            mapping[prop] = found
        return FieldMapping(**mapping)

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
            unique[contact.email.strip().lower()] = contact
        items = list(unique.items())
        for start in range(0, len(items), BATCH_SIZE):
            chunk = dict(items[start : start + BATCH_SIZE])
            by_email.update(await self._batch_subscribe(list_id, chunk, mapping, defer_tags))
        return [by_email[contact.email.strip().lower()] for contact in contacts]

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
        answer = await self._request("POST", f"/lists/{list_id}", json=body)
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
            results[email] = UpsertResult(
                email=email, outcome=UpsertOutcome.rejected, reason=_rejection_reason(error)
            )
        missing = {
            email: tags
            for email, member in members
            if email in chunk and (tags := _missing_tags(member, chunk[email].tags))
        }
        if defer_tags:
            for email, tags in missing.items():
                results[email].missing_tags = tags
            missing = {}
        for email, failure in (await self._add_tags_in_bulk(list_id, missing)).items():
            results[email] = UpsertResult(
                email=email,
                outcome=UpsertOutcome.rejected,
                provider_id=results[email].provider_id,
                reason=f"Contact saved, but its tags could not be set: {failure}",
            )
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
        return await self._add_tags_in_bulk(list_id, missing)

    async def _add_tags_in_bulk(
        self, list_id: str, missing: Mapping[str, Sequence[str]]
    ) -> dict[str, str]:
        """Add each member (by email) to the tags it lacks; returns a reason per email whose
        tags could not be set.

        One static-segment request per tag and 500 members. A contact is only reported if the
        member tags endpoint refuses it too: that endpoint is the fallback for addresses the
        segment call lists in `errors` and for a tag whose segment call fails permanently.
        """
        by_tag: dict[str, list[str]] = {}
        for email, tags in missing.items():
            for tag in tags:
                by_tag.setdefault(tag, []).append(email)
        if not by_tag:
            return {}
        segment_ids = await self._tag_segment_ids(list_id, list(by_tag))
        chunks = [
            (tag, emails[start : start + SEGMENT_BATCH_SIZE])
            for tag, emails in by_tag.items()
            for start in range(0, len(emails), SEGMENT_BATCH_SIZE)
        ]
        refused = await asyncio.gather(
            *(self._add_to_segment(list_id, segment_ids.get(tag), emails) for tag, emails in chunks)
        )
        fallback: dict[str, list[str]] = {}
        for (tag, _), emails in zip(chunks, refused, strict=True):
            for email in emails:
                fallback.setdefault(email, []).append(tag)
        reasons = await asyncio.gather(
            *(self._tag_one(list_id, email, tags) for email, tags in fallback.items())
        )
        return {
            email: reason
            for email, reason in zip(fallback, reasons, strict=True)
            if reason is not None
        }

    async def _add_to_segment(
        self, list_id: str, segment_id: int | None, emails: list[str]
    ) -> list[str]:
        """Add up to 500 members to a static segment; returns the emails it did not take."""
        if segment_id is None:
            return emails
        try:
            answer = await self._request(
                "POST", f"/lists/{list_id}/segments/{segment_id}", json={"members_to_add": emails}
            )
        except MailchimpRequestError as exc:
            if isinstance(exc, MailchimpNotFoundError):
                self._segments.forget(self._api_key, list_id)  # deleted in Mailchimp: re-read
            logger.warning(
                "mailchimp.segment_add_failed",
                extra={"segment_id": segment_id, "members": len(emails), "reason": exc.message},
            )
            return emails
        not_added = {
            str(address).strip().lower()
            for error in answer.get("errors") or []
            if isinstance(error, dict)
            for address in error.get("email_addresses") or []
        }
        return [email for email in emails if email in not_added]

    async def _tag_segment_ids(self, list_id: str, names: list[str]) -> dict[str, int]:
        """Static segment id of each tag name, creating the missing tags.

        The list's segments are read once per `SegmentCache` entry (all pages) and again only
        when a wanted tag is not among them, so a tag made elsewhere meanwhile is found rather
        than created twice. A tag that cannot be created is left out (its members take the
        fallback).
        """
        async with self._segments.lock(self._api_key, list_id):
            known = self._segments.get(self._api_key, list_id)
            if known is None or any(name not in known for name in names):
                known = await self._read_tag_segments(list_id)
            absent = [name for name in names if name not in known]
            created = await asyncio.gather(*(self._create_tag(list_id, name) for name in absent))
            known = dict(known)
            known.update(
                (name, segment_id)
                for name, segment_id in zip(absent, created, strict=True)
                if segment_id is not None
            )
            self._segments.put(self._api_key, list_id, known)
            if any(segment_id is None for segment_id in created):
                # Another worker may have created the same tag a moment ago (Mailchimp then
                # refuses the duplicate name): read the list again before giving up on it.
                known = await self._read_tag_segments(list_id)
            return {name: known[name] for name in names if name in known}

    async def _read_tag_segments(self, list_id: str) -> dict[str, int]:
        known = {
            str(segment.get("name")): int(segment["id"])
            async for segment in self._paginate(
                f"/lists/{list_id}/segments",
                "segments",
                fields="segments.id,segments.name",
                params={"type": "static"},
            )
        }
        self._segments.put(self._api_key, list_id, known)
        return known

    async def _create_tag(self, list_id: str, name: str) -> int | None:
        try:
            segment = await self._request(
                "POST", f"/lists/{list_id}/segments", json={"name": name, "static_segment": []}
            )
        except MailchimpRequestError as exc:
            logger.warning("mailchimp.tag_not_created", extra={"tag": name, "reason": exc.message})
            return None
        return int(segment["id"])

    async def _tag_one(self, list_id: str, email: str, tags: Sequence[str]) -> str | None:
        """Activate `tags` through the member tags endpoint; a reason on permanent failure."""
        try:
            await self.set_tags(list_id, email, add=tags, remove=())
        except MailchimpRequestError as exc:
            return exc.message
        return None

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
        email = contact.email.strip().lower()
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
            member = await self._request(
                "PUT", f"/lists/{list_id}/members/{subscriber_hash(email)}", json=body
            )
        except MailchimpNotFoundError:
            raise
        except MailchimpRequestError as exc:
            if exc.status_code != 400:
                raise
            return UpsertResult(email=email, outcome=UpsertOutcome.rejected, reason=exc.message)
        provider_id = member.get("id")
        failure = await self._tag_one(list_id, email, _missing_tags(member, contact.tags))
        if failure is not None:
            return UpsertResult(
                email=email,
                outcome=UpsertOutcome.rejected,
                provider_id=provider_id,
                reason=f"Contact saved, but its tags could not be set: {failure}",
            )
        # PUT does not say whether it created or updated the member.
        return UpsertResult(
            email=email,
            outcome=UpsertOutcome.synced,
            provider_id=provider_id,
            status=member.get("status"),
        )

    async def set_subscription(self, list_id: str, email: str, subscribed: bool) -> None:
        """Subscribe (creating the member if needed) or unsubscribe (no-op if unknown)."""
        path = f"/lists/{list_id}/members/{subscriber_hash(email)}"
        status = _status(subscribed)
        if subscribed:
            body = {
                "email_address": email.strip().lower(),
                "status_if_new": status,
                "status": status,
            }
            await self._request("PUT", path, json=body)
            return
        try:
            await self._request("PATCH", path, json={"status": status})
        except MailchimpNotFoundError:
            logger.info("mailchimp.unsubscribe_unknown_member", extra={"list_id": list_id})

    async def change_email(self, list_id: str, old_email: str, new_email: str) -> None:
        """PATCH the member found under the *old* hash (hashing the new one would duplicate)."""
        await self._request(
            "PATCH",
            f"/lists/{list_id}/members/{subscriber_hash(old_email)}",
            json={"email_address": new_email.strip().lower()},
        )

    async def archive_contact(self, list_id: str, email: str) -> None:
        """Archive (Mailchimp's DELETE): reversible, unlike delete-permanent. Idempotent."""
        # 404: already archived or never existed.
        with contextlib.suppress(MailchimpNotFoundError):
            await self._request("DELETE", f"/lists/{list_id}/members/{subscriber_hash(email)}")

    async def delete_contact_permanently(self, list_id: str, email: str) -> None:
        """GDPR erasure. The address can never be imported again; use only on request."""
        with contextlib.suppress(MailchimpNotFoundError):
            await self._request(
                "POST",
                f"/lists/{list_id}/members/{subscriber_hash(email)}/actions/delete-permanent",
            )

    async def get_contact(self, list_id: str, email: str) -> ProviderContact | None:
        try:
            member = await self._request(
                "GET",
                f"/lists/{list_id}/members/{subscriber_hash(email)}",
                params={"fields": _MEMBER_FIELDS},
            )
        except MailchimpNotFoundError:
            return None
        return await self._to_contact(list_id, member)

    async def set_tags(
        self, list_id: str, email: str, add: Sequence[str], remove: Sequence[str]
    ) -> None:
        tags = [{"name": name, "status": "active"} for name in dict.fromkeys(add)]
        tags += [{"name": name, "status": "inactive"} for name in dict.fromkeys(remove)]
        if not tags:
            return
        # is_syncing: a data sync must not trigger tag-based automations in Mailchimp.
        await self._request(
            "POST",
            f"/lists/{list_id}/members/{subscriber_hash(email)}/tags",
            json={"tags": tags, "is_syncing": True},
        )

    async def iter_contacts(
        self, list_id: str, *, start: int = 0, archived: bool = False
    ) -> AsyncIterator[ProviderContact]:
        """Every non-archived member (or, with `archived`, every archived one) from offset
        `start`, `page_size` per request, with tags, status and last_changed."""
        fields = ",".join(f"members.{name}" for name in _MEMBER_FIELDS.split(","))
        async for member in self._paginate(
            f"/lists/{list_id}/members",
            "members",
            fields=fields,
            start=start,
            params={"status": "archived"} if archived else None,
        ):
            yield await self._to_contact(list_id, member)

    async def iter_list_state(
        self,
        list_id: str,
        *,
        concurrency: int = LIST_STATE_CONCURRENCY,
        start: int = 0,
        expected_total: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[list[ProviderContact]]:
        """Every non-archived member from offset `start` with status, last_changed and tags,
        `page_size` (1000) per request and `concurrency` requests at a time, yielded in offset
        order. Each request also holds a slot of the shared limiter, so with the default 4 the
        key keeps 6 of its 10 connections for writes. Members with more than 50 tags cost one
        extra read each (the embedded view is capped)."""
        fields = ",".join(f"members.{name}" for name in _STATE_FIELDS.split(","))

        async def fetch(offset: int) -> tuple[list[ProviderContact], int | None]:
            page = await self._request(
                "GET",
                f"/lists/{list_id}/members",
                params={
                    "count": self._page_size,
                    "offset": offset,
                    "fields": f"{fields},total_items",
                },
            )
            contacts = [await self._to_contact(list_id, m) for m in page.get("members") or []]
            total = page.get("total_items")
            return contacts, int(total) if total is not None else None

        async for contacts in parallel_pages(
            fetch,
            page_size=self._page_size,
            concurrency=concurrency,
            start=start,
            expected_total=expected_total,
            stop=stop,
        ):
            yield contacts

    async def iter_campaign_recipients(self, campaign_id: str) -> AsyncIterator[str]:
        """Emails a sent campaign was delivered to (`/reports/{id}/sent-to`), 1000 per page.

        Mailchimp has no per-recipient delivery webhook; its `campaign` webhook is the cue."""
        if not re.fullmatch(r"[0-9a-zA-Z]+", campaign_id):
            raise MailchimpRequestError(f"invalid campaign id {campaign_id!r}")
        async for item in self._paginate(
            f"/reports/{campaign_id}/sent-to",
            "sent_to",
            fields="sent_to.email_address,sent_to.status",
        ):
            if item.get("status") in (None, "sent"):
                yield str(item.get("email_address", "")).strip().lower()

    async def count_contacts(self, list_id: str) -> int:
        """Members of every status except archived (what `iter_contacts` yields)."""
        page = await self._request(
            "GET", f"/lists/{list_id}/members", params={"count": 1, "fields": "total_items"}
        )
        return int(page.get("total_items") or 0)

    async def recent_opt_outs(self, list_id: str, since: datetime) -> set[str]:
        """One filtered read per opt-out status, at the same time (changes since `since` are
        few). Filtering by `since_last_changed` alone would be one read, but it lists every
        member the run's own batches just wrote too."""

        async def of_status(status: str) -> set[str]:
            return {
                str(member.get("email_address", "")).strip().lower()
                async for member in self._paginate(
                    f"/lists/{list_id}/members",
                    "members",
                    fields="members.email_address",
                    params={
                        "status": status,
                        "since_last_changed": since.astimezone(UTC).isoformat(timespec="seconds"),
                    },
                )
            }

        statuses = ("unsubscribed", "cleaned", "archived", "pending")
        return set().union(*await asyncio.gather(*(of_status(s) for s in statuses)))

    async def count_subscribed(self, list_id: str) -> int:
        page = await self._request(
            "GET",
            f"/lists/{list_id}/members",
            params={"count": 1, "status": "subscribed", "fields": "total_items"},
        )
        return int(page.get("total_items") or 0)

    async def _to_contact(self, list_id: str, member: dict[str, Any]) -> ProviderContact:
        tags = [str(tag.get("name")) for tag in member.get("tags") or [] if isinstance(tag, dict)]
        if int(member.get("tags_count") or 0) > len(tags):
            # The embedded view is capped at 50 tags; read the rest from the tags endpoint.
            tags = [
                str(tag.get("name"))
                async for tag in self._paginate(
                    f"/lists/{list_id}/members/{member.get('id')}/tags",
                    "tags",
                    fields="tags.name",
                )
            ]
        merge = member.get("merge_fields") or {}
        status = member.get("status")
        return ProviderContact(
            email=str(member.get("email_address", "")).lower(),
            provider_id=member.get("id"),
            first_name=str(merge.get("FNAME") or ""),
            last_name=str(merge.get("LNAME") or ""),
            subscribed=None if status is None else status == "subscribed",
            status=status,
            tags=tags,
            last_changed=parse_iso_timestamp(member.get("last_changed")),
        )

    # ------------------------------------------------------------------------------------------
    # Webhooks
    # ------------------------------------------------------------------------------------------

    async def register_webhook(self, list_id: str, url: str, token: str) -> WebhookInfo:
        """Ensure exactly one webhook for `url` with our events and sources (never `api`).

        `token` is unused: Mailchimp cannot send credentials, so the secret lives in the URL.
        """
        del token
        wanted = {
            "events": dict.fromkeys(WEBHOOK_EVENTS, True),
            "sources": WEBHOOK_SOURCES,
        }
        hooks = await self._request("GET", f"/lists/{list_id}/webhooks")
        for hook in hooks.get("webhooks") or []:
            if hook.get("url") != url:
                continue
            events = hook.get("events") or {}
            sources = hook.get("sources") or {}
            if any(not events.get(e) for e in WEBHOOK_EVENTS) or any(
                bool(sources.get(k)) != v for k, v in WEBHOOK_SOURCES.items()
            ):
                await self._request("PATCH", f"/lists/{list_id}/webhooks/{hook['id']}", json=wanted)
            return WebhookInfo(id=str(hook["id"]), url=url)
        try:
            hook = await self._request(
                "POST", f"/lists/{list_id}/webhooks", json={"url": url, **wanted}
            )
        except MailchimpRequestError as exc:
            if exc.status_code != 400:
                raise
            raise MailchimpRequestError(
                f"Mailchimp refused the webhook address {url}: {exc.message} Mailchimp checks "
                f"the address with a GET request, so it must be publicly reachable over the "
                f"internet (check PUBLIC_BASE_URL).",
                status_code=exc.status_code,
                endpoint=exc.endpoint,
                error_body=exc.error_body,
            ) from exc
        return WebhookInfo(id=str(hook["id"]), url=str(hook.get("url", url)))

    async def remove_webhook(self, list_id: str, webhook_id: str) -> None:
        with contextlib.suppress(MailchimpNotFoundError):
            await self._request("DELETE", f"/lists/{list_id}/webhooks/{webhook_id}")

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> MailchimpClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------
    # Transport
    # ------------------------------------------------------------------------------------------

    def _paginate(
        self,
        path: str,
        items_key: str,
        *,
        fields: str,
        params: dict[str, Any] | None = None,
        start: int = 0,
    ) -> AsyncIterator[dict[str, Any]]:
        async def fetch(offset: int) -> tuple[list[dict[str, Any]], int | None]:
            page = await self._request(
                "GET",
                path,
                params={
                    **(params or {}),
                    "count": self._page_size,
                    "offset": offset,
                    "fields": f"{fields},total_items",
                },
            )
            return list(page.get(items_key) or []), int(page.get("total_items") or 0)

        return offset_items(fetch, page_size=self._page_size, start=start)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One API call with retries; returns the decoded JSON body ({} when there is none)."""
        return await self._transport.json(method, path, params=params, json=json)


def _rejection_reason(error: dict[str, Any]) -> str:
    message = str(error.get("error") or "rejected by Mailchimp")
    field_message = error.get("field_message")
    if field_message:
        message += f" ({error.get('field') or 'field'}: {field_message})"
    lowered = message.lower()
    if "compliance state" in lowered:
        return blocked_reason("Member In Compliance State", message)
    if "permanently deleted" in lowered or "forgotten" in lowered:
        return blocked_reason("Forgotten Email Not Subscribed", message)
    if "fake or invalid" in lowered or "valid email" in lowered:
        return f"Mailchimp considers this email address invalid. ({message})"
    return message


def _missing_tags(member: dict[str, Any], wanted: Sequence[str]) -> list[str]:
    """The wanted tags the member's returned tags lack; all of them when the embedded view is
    capped (more than 50 tags), since then it cannot tell."""
    if not wanted:
        return []
    embedded = member.get("tags")
    has: set[str] = set()
    if isinstance(embedded, list) and int(member.get("tags_count") or 0) <= len(embedded):
        has = {str(tag.get("name")) for tag in embedded if isinstance(tag, dict)}
    return [tag for tag in dict.fromkeys(wanted) if tag not in has]


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


def _language_of(root: dict[str, Any]) -> str | None:
    """Best guess at the account language from its country (Mailchimp exposes no locale)."""
    country = str((root.get("contact") or {}).get("country") or "").upper()
    if not country:
        return None
    return "de" if country in {"DE", "AT", "CH", "LI", "LU"} else "en"
