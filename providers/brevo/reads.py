"""Reading a Brevo list's contacts in parallel pages (the full sync's list state)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from providers._paging import parallel_pages
from providers.base import ProviderContact
from providers.brevo.api import BrevoApi

PAGE_CONTACTS: Final = 500
PAGE_ACCOUNT_CONTACTS: Final = 1000  # `GET /contacts` allows 1000 per page


async def iter_list_state(
    api: BrevoApi,
    list_no: int,
    convert: Callable[[Mapping[str, Any], int], ProviderContact],
    *,
    concurrency: int = 4,
    start: int = 0,
    expected_total: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> AsyncIterator[list[ProviderContact]]:
    """Every contact of the list from offset `start` (500 per request, in offset order) with
    `emailBlacklisted`, `listUnsubscribed` and `modifiedAt`, `concurrency` requests in flight;
    each request waits for the shared /contacts pacer, so the account's 10/s holds whatever
    the concurrency (it only overlaps latency)."""
    path = f"/contacts/lists/{list_no}/contacts"

    async def fetch(offset: int) -> tuple[list[ProviderContact], int | None]:
        params = {"limit": PAGE_CONTACTS, "offset": offset, "sort": "asc"}
        page = await api.json("GET", path, params=params, label=f"GET {path}")
        contacts = [convert(raw, list_no) for raw in page.get("contacts") or []]
        total = page.get("count")
        return contacts, total if isinstance(total, int) else None

    async for contacts in parallel_pages(
        fetch,
        page_size=PAGE_CONTACTS,
        concurrency=concurrency,
        start=start,
        expected_total=expected_total,
        stop=stop,
    ):
        yield contacts


async def changed_since(
    api: BrevoApi,
    list_no: int,
    convert: Callable[[Mapping[str, Any], int], ProviderContact],
    since: datetime,
) -> AsyncIterator[ProviderContact]:
    """Contacts of the account modified at or after `since` (`GET /contacts?modifiedSince`,
    1000 per page): the list's own read cannot show a contact removed from the list. Every
    such contact is yielded, with `in_list` (still in the list or not); the caller drops the
    ones it never knew. `modifiedAt` also moves on list touches (false positives)."""
    stamp = since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    async for raw in api.paged(
        "/contacts",
        "contacts",
        PAGE_ACCOUNT_CONTACTS,
        params={"modifiedSince": stamp},
        label="GET /contacts",
    ):
        yield convert(raw, list_no)
