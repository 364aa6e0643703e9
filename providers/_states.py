"""Reading the current state of a set of emails in bulk (`NewsletterProvider.read_states`).

A handful of emails costs one read each. More cost the provider's "changed since" listing
(Mailchimp `since_last_changed`, each status including archived; Brevo `modifiedSince`),
page by page, and one read each for the wanted emails it did not return (unchanged since, or
gone). The listing is given up as soon as it would cost more pages than the emails still
missing would cost single reads (a full sync that just touched every contact moves them all),
so the total is never much more than one read per email.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence

from providers.base import ProviderContact, normalise_email

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
) -> dict[str, ProviderContact | None]:
    """Each wanted email's state (None: the provider has no such contact), plus every other
    contact a listing returned on the way (the caller may keep them for later events)."""
    wanted = sorted({normalise_email(e) for e in emails if e})
    found: dict[str, ProviderContact | None] = {}
    if len(wanted) > HANDFUL:
        for listing in listings:
            if not await _read_listing(listing, wanted, found, page_size):
                break
    missing = [e for e in wanted if e not in found]
    gate = asyncio.Semaphore(SINGLE_CONCURRENCY)

    async def single(email: str) -> None:
        async with gate:
            found[email] = await one(email)

    await asyncio.gather(*(single(e) for e in missing))
    return found


async def _read_listing(
    listing: ChangedPage,
    wanted: Sequence[str],
    found: dict[str, ProviderContact | None],
    page_size: int,
) -> bool:
    """Read one "changed since" listing into `found`; False when it was given up (too big for
    what it would save)."""
    offset = 0
    while True:
        still = sum(1 for e in wanted if e not in found)
        if still == 0:
            return True
        contacts, total = await listing(offset)
        if offset == 0 and total is not None:
            pages_left = math.ceil(max(0, total - len(contacts)) / page_size)
            if pages_left > still:
                _keep(found, contacts)
                return False
        _keep(found, contacts)
        offset += len(contacts)
        if len(contacts) < page_size or (total is not None and offset >= total):
            return True


def _keep(found: dict[str, ProviderContact | None], contacts: Sequence[ProviderContact]) -> None:
    for contact in contacts:
        found[normalise_email(contact.email)] = contact
