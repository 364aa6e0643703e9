"""Reading a Brevo list's contacts in parallel pages (the full sync's list state)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from providers._paging import parallel_pages
from providers._states import read_states
from providers.base import ListingCursor, ProviderContact
from providers.brevo.api import BrevoApi
from providers.brevo.errors import BrevoRequestError
from providers.brevo.values import identifier

PAGE_CONTACTS: Final = 500
PAGE_ACCOUNT_CONTACTS: Final = 1000  # `GET /contacts` allows 1000 per page
PAGE_CHANGED: Final = PAGE_ACCOUNT_CONTACTS


async def contact_states(
    api: BrevoApi,
    list_no: int,
    emails: Sequence[str],
    since: datetime | None,
    convert: Callable[[Mapping[str, Any], int], ProviderContact],
    cursor: ListingCursor | None = None,
) -> dict[str, ProviderContact | None]:
    """The current state of these contacts for the list (None: no such contact), read in bulk
    (`providers._states`): the account's contacts modified since `since` (the `cursor`'s,
    when given; `GET /contacts` with `modifiedSince`: account-wide, so a contact removed from
    the list is there too), else one `GET /contacts/{email}` each. Every request waits for
    the /contacts pacer."""
    since = cursor.since if cursor is not None else since
    floor = (since or datetime.now(UTC)).astimezone(UTC)
    stamp = floor.strftime("%Y-%m-%dT%H:%M:%S.") + f"{floor.microsecond // 1000:03d}Z"

    async def changed(offset: int) -> tuple[list[ProviderContact], int | None]:
        params = {"limit": PAGE_CHANGED, "offset": offset, "modifiedSince": stamp, "sort": "asc"}
        page = await api.json("GET", "/contacts", params=params, label="GET /contacts")
        total = page.get("count")
        contacts = [convert(raw, list_no) for raw in page.get("contacts") or []]
        return contacts, total if isinstance(total, int) else None

    async def one(email: str) -> ProviderContact | None:
        try:
            raw = await api.json(
                "GET", f"/contacts/{identifier(email)}", label="GET /contacts/{identifier}"
            )
        except BrevoRequestError as exc:
            if exc.status_code == 404:
                return None
            raise
        return convert(raw, list_no)

    return await read_states(emails, one, [changed], page_size=PAGE_CHANGED, cursor=cursor)


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
