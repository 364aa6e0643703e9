"""Reading members: one contact, the whole audience (one page after another, or in parallel
pages for the list state), campaign recipients, counts, and the opt-outs since a moment."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from providers._paging import parallel_pages
from providers._states import ChangedPage, read_states
from providers._time import parse_iso_timestamp
from providers.base import ListingCursor, ProviderContact, ProviderState, normalise_email
from providers.mailchimp.api import MailchimpApi, subscriber_hash
from providers.mailchimp.codes import member_state
from providers.mailchimp.errors import MailchimpNotFoundError, MailchimpRequestError

_MEMBER_FIELDS = "id,email_address,status,merge_fields,tags,tags_count,last_changed"
_STATE_FIELDS = "id,email_address,status,last_changed,tags,tags_count"
_STATUS_FIELDS = "id,email_address,status,last_changed"
LIST_STATE_CONCURRENCY = 4  # pages in flight: 4 of the key's 10 connections, 6 left for writes


async def get_contact(api: MailchimpApi, list_id: str, email: str) -> ProviderContact | None:
    try:
        member = await api.request(
            "GET",
            f"/lists/{list_id}/members/{subscriber_hash(email)}",
            params={"fields": _MEMBER_FIELDS},
        )
    except MailchimpNotFoundError:
        return None
    return await to_contact(api, list_id, member)


async def member_states(
    api: MailchimpApi,
    list_id: str,
    emails: Sequence[str],
    since: datetime | None,
    cursor: ListingCursor | None = None,
) -> dict[str, ProviderContact | None]:
    """The current status and `last_changed` of these members (None: no such member), read in
    bulk (`providers._states`): the members changed since `since` (the `cursor`'s, when
    given), archived ones included (a second listing: the normal one hides them), else one
    member read each. No tags. Listed oldest change first, so a member that changes after its
    page was read comes later in the listing, where a cursor's next read finds it."""
    since = cursor.since if cursor is not None else since
    floor = (since or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds")
    fields = ",".join(f"members.{name}" for name in _STATUS_FIELDS.split(","))

    def listing(status: str | None) -> ChangedPage:
        async def fetch(offset: int) -> tuple[list[ProviderContact], int | None]:
            params = {"count": api.page_size, "offset": offset, "since_last_changed": floor}
            params |= {"sort_field": "last_changed", "sort_dir": "ASC"}
            params |= {"fields": f"{fields},total_items"} | ({"status": status} if status else {})
            page = await api.request("GET", f"/lists/{list_id}/members", params=params)
            contacts = [status_of(m) for m in page.get("members") or []]
            total = page.get("total_items")
            return contacts, int(total) if total is not None else None

        return fetch

    async def one(email: str) -> ProviderContact | None:
        try:
            member = await api.request(
                "GET",
                f"/lists/{list_id}/members/{subscriber_hash(email)}",
                params={"fields": _STATUS_FIELDS},
            )
        except MailchimpNotFoundError:
            return None
        return status_of(member)

    listings = [listing(None), listing("archived")]
    return await read_states(emails, one, listings, page_size=api.page_size, cursor=cursor)


def status_of(member: dict[str, Any]) -> ProviderContact:
    status = member_state(member.get("status"))
    return ProviderContact(
        email=normalise_email(str(member.get("email_address", ""))),
        provider_id=member.get("id"),
        subscribed=None if status is None else status == ProviderState.subscribed,
        status=status,
        last_changed=parse_iso_timestamp(member.get("last_changed")),
    )


async def iter_contacts(
    api: MailchimpApi, list_id: str, *, start: int = 0, archived: bool = False
) -> AsyncIterator[ProviderContact]:
    """Every non-archived member (or, with `archived`, every archived one) from offset
    `start`, `page_size` per request, with tags, status and last_changed."""
    fields = ",".join(f"members.{name}" for name in _MEMBER_FIELDS.split(","))
    async for member in api.paginate(
        f"/lists/{list_id}/members",
        "members",
        fields=fields,
        start=start,
        params={"status": "archived"} if archived else None,
    ):
        yield await to_contact(api, list_id, member)


async def iter_list_state(
    api: MailchimpApi,
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
        page = await api.request(
            "GET",
            f"/lists/{list_id}/members",
            params={
                "count": api.page_size,
                "offset": offset,
                "fields": f"{fields},total_items",
            },
        )
        contacts = [await to_contact(api, list_id, m) for m in page.get("members") or []]
        total = page.get("total_items")
        return contacts, int(total) if total is not None else None

    async for contacts in parallel_pages(
        fetch,
        page_size=api.page_size,
        concurrency=concurrency,
        start=start,
        expected_total=expected_total,
        stop=stop,
    ):
        yield contacts


async def iter_campaign_recipients(api: MailchimpApi, campaign_id: str) -> AsyncIterator[str]:
    """Emails a sent campaign was delivered to (`/reports/{id}/sent-to`), 1000 per page.

    Mailchimp has no per-recipient delivery webhook; its `campaign` webhook is the cue."""
    if not re.fullmatch(r"[0-9a-zA-Z]+", campaign_id):
        raise MailchimpRequestError(f"invalid campaign id {campaign_id!r}")
    async for item in api.paginate(
        f"/reports/{campaign_id}/sent-to",
        "sent_to",
        fields="sent_to.email_address,sent_to.status",
    ):
        if item.get("status") in (None, "sent"):
            yield normalise_email(str(item.get("email_address", "")))


async def count_contacts(api: MailchimpApi, list_id: str) -> int:
    """Members of every status except archived (what `iter_contacts` yields)."""
    page = await api.request(
        "GET", f"/lists/{list_id}/members", params={"count": 1, "fields": "total_items"}
    )
    return int(page.get("total_items") or 0)


async def recent_opt_outs(api: MailchimpApi, list_id: str, since: datetime) -> set[str]:
    """One filtered read per opt-out status, at the same time (changes since `since` are
    few). Filtering by `since_last_changed` alone would be one read, but it lists every
    member the run's own batches just wrote too."""

    async def of_status(status: str) -> set[str]:
        return {
            normalise_email(str(member.get("email_address", "")))
            async for member in api.paginate(
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


async def changed_since(
    api: MailchimpApi, list_id: str, since: datetime
) -> AsyncIterator[ProviderContact]:
    """Members whose `last_changed` is at or after `since`, in every status: the normal
    listing (subscribed, unsubscribed, cleaned, pending, transactional), then the archived
    ones, which Mailchimp lists only when asked by status. One read each when few changed."""
    names = [*_MEMBER_FIELDS.split(","), "timestamp_opt"]
    fields = ",".join(f"members.{name}" for name in names)
    stamp = since.astimezone(UTC).isoformat(timespec="seconds")
    for extra in ({}, {"status": "archived"}):
        async for member in api.paginate(
            f"/lists/{list_id}/members",
            "members",
            fields=fields,
            params={**extra, "since_last_changed": stamp},
        ):
            yield await to_contact(api, list_id, member)


# A batch whose answer was lost is checked when the members changed since it was sent fit in
# this many list pages (1,000 members each, read four at a time): at most ten reads instead of
# 500 writes (each write of a member may trigger the list's automations and a profile webhook).
# On a list where more changed since (a big full sync writing in parallel for longer than
# ~30 s), the batch is resent: an upsert, the list ends the same.
CHECK_MAX_PAGES = 10
# A send is checked from this long before it started (clocks differ; `last_changed` has seconds).
CHECK_SKEW = timedelta(seconds=5)


def as_member(contact: ProviderContact) -> dict[str, Any]:
    """A member read back, in the shape of a batch subscribe's answer."""
    return {
        "email_address": contact.email,
        "id": contact.provider_id,
        "status": contact.status,
        "tags": [{"name": tag} for tag in contact.tags],
        "tags_count": len(contact.tags),
    }


async def applied_since(
    api: MailchimpApi, list_id: str, emails: Sequence[str], since: datetime
) -> dict[str, ProviderContact] | None:
    """The members among `emails` changed at or after `since` (status, tags), read from the
    "changed since" listing (the first page, then the others LIST_STATE_CONCURRENCY at a time);
    None when that listing is longer than CHECK_MAX_PAGES pages (then resending is cheaper)."""
    wanted = {normalise_email(e) for e in emails}
    fields = ",".join(f"members.{name}" for name in _STATE_FIELDS.split(","))
    stamp = since.astimezone(UTC).isoformat(timespec="seconds")
    gate = asyncio.Semaphore(LIST_STATE_CONCURRENCY)

    async def page(offset: int) -> tuple[list[dict[str, Any]], int]:
        async with gate:
            answer = await api.request(
                "GET",
                f"/lists/{list_id}/members",
                params={
                    "count": api.page_size,
                    "offset": offset,
                    "since_last_changed": stamp,
                    "fields": f"{fields},total_items",
                },
            )
        return list(answer.get("members") or []), int(answer.get("total_items") or 0)

    members, total = await page(0)
    if total > CHECK_MAX_PAGES * api.page_size:
        return None
    rest = range(len(members), total, api.page_size) if members else range(0)
    for more, _total in await asyncio.gather(*(page(offset) for offset in rest)):
        members += more
    found: dict[str, ProviderContact] = {}
    for member in members:
        email = normalise_email(str(member.get("email_address", "")))
        if email in wanted:
            found[email] = await to_contact(api, list_id, member)
    return found


async def count_subscribed(api: MailchimpApi, list_id: str) -> int:
    page = await api.request(
        "GET",
        f"/lists/{list_id}/members",
        params={"count": 1, "status": "subscribed", "fields": "total_items"},
    )
    return int(page.get("total_items") or 0)


async def to_contact(api: MailchimpApi, list_id: str, member: dict[str, Any]) -> ProviderContact:
    tags = [str(tag.get("name")) for tag in member.get("tags") or [] if isinstance(tag, dict)]
    if int(member.get("tags_count") or 0) > len(tags):
        # The embedded view is capped at 50 tags; read the rest from the tags endpoint.
        tags = [
            str(tag.get("name"))
            async for tag in api.paginate(
                f"/lists/{list_id}/members/{member.get('id')}/tags",
                "tags",
                fields="tags.name",
            )
        ]
    merge = member.get("merge_fields") or {}
    status = member_state(member.get("status"))
    return ProviderContact(
        email=str(member.get("email_address", "")).lower(),
        provider_id=member.get("id"),
        first_name=str(merge.get("FNAME") or ""),
        last_name=str(merge.get("LNAME") or ""),
        subscribed=None if status is None else status == ProviderState.subscribed,
        status=status,
        tags=tags,
        last_changed=parse_iso_timestamp(member.get("last_changed")),
        opted_in_at=parse_iso_timestamp(member.get("timestamp_opt")),
    )


# ------------------------------------------------------------------------------------------
# Webhooks
# ------------------------------------------------------------------------------------------
