"""Reading the current state of a set of emails in bulk (`NewsletterProvider.read_states`).

A handful of emails costs one read each. More cost the provider's "changed since" listing
(Mailchimp `since_last_changed`, each status including archived; Brevo `modifiedSince`),
page by page, and one read each for the wanted emails it did not return (unchanged since, or
gone). The listing is given up as soon as it would cost more pages than the emails still
missing would cost single reads (a full sync that just touched every contact moves them all),
so the total is never much more than one read per email.

A listing stops as soon as every wanted email is found. With a `ListingCursor` (a drain job
keeps one) the next read goes on from where the last one stopped instead of starting over at
the first page: a burst confirmed 500 events at a time reads each page once, not once per batch
(each batch's people further down the listing). Mailchimp lists by the time of the change, so a
member that changed after its page was read comes later and is found by going on; one the
listing passed or skipped is read on its own, or, when more of the wanted contacts lie behind
the cursor than it passed pages, the listing is read again from its first page.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence

from providers.base import ListingCursor, ProviderContact, normalise_email

# (offset) -> (contacts of that page, total the listing reports)
ChangedPage = Callable[[int], Awaitable[tuple[list[ProviderContact], int | None]]]
OneRead = Callable[[str], Awaitable[ProviderContact | None]]

# Up to this many emails are read one by one (a listing costs at least one read per status).
HANDFUL = 8
# Single reads in flight at a time (the provider's own limits still pace them).
SINGLE_CONCURRENCY = 4


async def read_states(
    emails: Sequence[str],
    one: OneRead,
    listings: Sequence[ChangedPage],
    *,
    page_size: int,
    cursor: ListingCursor | None = None,
) -> dict[str, ProviderContact | None]:
    """Each wanted email's state (None: the provider has no such contact), plus every other
    contact a listing returned on the way (the caller may keep them for later events). The
    listings start at the `cursor`'s offsets (which they advance), else at the first page."""
    wanted = sorted({normalise_email(e) for e in emails if e})
    found: dict[str, ProviderContact | None] = {}
    if len(wanted) > HANDFUL:
        passed = math.ceil(sum(cursor.offsets.values()) / page_size) if cursor else 0
        await _read_listings(listings, wanted, found, page_size, cursor)
        if cursor is not None and passed and sum(1 for e in wanted if e not in found) > passed:
            # More of the wanted contacts lie behind the cursor than it passed pages (they
            # changed before it, or the listing shifted under it): read those pages again
            # rather than each contact on its own.
            cursor.offsets.clear()
            await _read_listings(listings, wanted, found, page_size, cursor)
    missing = [e for e in wanted if e not in found]
    gate = asyncio.Semaphore(SINGLE_CONCURRENCY)

    async def single(email: str) -> None:
        async with gate:
            found[email] = await one(email)

    await asyncio.gather(*(single(e) for e in missing))
    return found


async def _read_listings(
    listings: Sequence[ChangedPage],
    wanted: Sequence[str],
    found: dict[str, ProviderContact | None],
    page_size: int,
    cursor: ListingCursor | None,
) -> None:
    """The listings one after another from the `cursor`'s offsets (advanced; else from the
    first page), until every wanted contact is found or one is given up. The cursor learns
    where each contact was listed."""
    for index, listing in enumerate(listings):
        start = cursor.offsets.get(index, 0) if cursor is not None else 0
        seen = cursor.positions if cursor is not None else None
        complete, offset = await _read_listing(
            listing, wanted, found, page_size, start, (index, seen)
        )
        if cursor is not None:
            cursor.offsets[index] = offset
        if not complete:
            return


async def _read_listing(
    listing: ChangedPage,
    wanted: Sequence[str],
    found: dict[str, ProviderContact | None],
    page_size: int,
    start: int,
    seen: tuple[int, dict[str, tuple[int, int]] | None],
) -> tuple[bool, int]:
    """Read one "changed since" listing into `found` from offset `start`: (False when it was
    given up, too big for what it would save; the offset to go on from)."""
    offset = start
    while True:
        still = sum(1 for e in wanted if e not in found)
        if still == 0:
            return True, offset
        contacts, total = await listing(offset)
        _keep(found, contacts)
        index, positions = seen
        if positions is not None:
            for n, contact in enumerate(contacts):
                positions[normalise_email(contact.email)] = (index, offset + n)
        first = offset == start
        offset += len(contacts)
        if first and total is not None:
            pages_left = math.ceil(max(0, total - offset) / page_size)
            if pages_left > still:
                return False, offset
        if len(contacts) < page_size or (total is not None and offset >= total):
            return True, offset


def _keep(found: dict[str, ProviderContact | None], contacts: Sequence[ProviderContact]) -> None:
    for contact in contacts:
        found[normalise_email(contact.email)] = contact
