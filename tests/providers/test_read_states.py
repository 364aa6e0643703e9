"""`NewsletterProvider.read_states` (the state a webhook is confirmed against), run against both
providers' in-process emulators with the contract harness: a handful is read one by one, more
through the "changed since" listing (Mailchimp: also the archived members), a contact the
provider does not have is None, and every request conforms to the provider's spec."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from providers.base import ListingCursor
from tests.providers.test_contract import (  # noqa: F401 - fixtures
    Harness,
    Ready,
    harness,
    people,
    ready,
    upsert_all,
)

REMOVED = {"archived", "not_in_list"}  # Mailchimp archives; Brevo removes from the list
OPTED_OUT = {"unsubscribed", "blacklisted"}


async def test_a_handful_and_many_states(harness: Harness, ready: Ready) -> None:  # noqa: F811
    provider = harness.provider
    contacts = people(12, prefix="state")
    await upsert_all(provider, ready, contacts)
    await provider.set_subscription(ready.list_id, contacts[0].email, False)
    await provider.archive_contact(ready.list_id, contacts[1].email)
    since = datetime.now(UTC) - timedelta(minutes=5)
    emails = [c.email for c in contacts]

    before = harness.inspector.requests()
    few = await provider.read_states(ready.list_id, [emails[0], emails[2], "x@example.de"], since)
    assert harness.inspector.requests() - before == 3  # one read each
    assert few[emails[0]] is not None and few[emails[0]].status in OPTED_OUT
    assert few[emails[2]] is not None and few[emails[2]].status == "subscribed"
    assert few["x@example.de"] is None

    before = harness.inspector.requests()
    many = await provider.read_states(ready.list_id, [*emails, "x@example.de"], since)
    assert harness.inspector.requests() - before < len(emails)  # a listing, not 13 reads
    assert set(emails) | {"x@example.de"} <= set(many)
    statuses = {e: (s.status if s else None) for e, s in many.items() if e in set(emails)}
    assert statuses[emails[0]] in OPTED_OUT and statuses[emails[1]] in REMOVED
    assert all(statuses[e] == "subscribed" for e in emails[2:])
    assert many["x@example.de"] is None
    assert all(s is None or s.last_changed is not None for s in many.values())

    # Nothing changed since: the listing is empty and every email is read on its own.
    later = datetime.now(UTC) + timedelta(minutes=1)
    again = await provider.read_states(ready.list_id, emails, later)
    assert {e: (s.status if s else None) for e, s in again.items()} == statuses
    assert harness.inspector.violations() == []


async def test_a_cursor_goes_on_where_the_last_read_stopped(
    harness: Harness,  # noqa: F811
    ready: Ready,  # noqa: F811
) -> None:
    """A drain confirms a burst batch by batch: each batch's people lie further down the
    listing. With the job's cursor a batch reads on from where the last one stopped instead of
    reading the pages before again; a member that changed after its page was read is still
    read as it is now."""
    provider, page = harness.provider, harness.page_size
    n = 7 * page
    if n > 1000:
        pytest.skip("the listing's pages hold every contact: nothing to go on from")
    contacts = people(n, prefix="burst")
    await upsert_all(provider, ready, contacts)
    since = datetime.now(UTC) - timedelta(minutes=5)
    emails = [c.email for c in contacts]
    # More than a handful each (a handful is read one by one).
    first, second = emails[: 2 * page], emails[3 * page : 5 * page]

    def requests() -> int:
        return int(harness.inspector.requests())

    before = requests()
    await provider.read_states(ready.list_id, second, since)
    from_the_start = requests() - before  # the five pages down to `second`

    cursor = ListingCursor(since)
    await provider.read_states(ready.list_id, first, since, cursor)
    before = requests()
    states = await provider.read_states(ready.list_id, second, since, cursor)
    assert requests() - before == from_the_start - 2  # the first two pages are not read again
    assert all(states[e] is not None and states[e].status == "subscribed" for e in second)

    await provider.set_subscription(ready.list_id, emails[0], False)  # after its page was read
    late_ones = [emails[0], *emails[5 * page :]]
    late = await provider.read_states(ready.list_id, late_ones, since, cursor)
    assert late[emails[0]] is not None and late[emails[0]].status in OPTED_OUT

    # A successor's cursor (a hand-over) stands at the end of the listing, and the people it
    # wants lie behind it: the listing is read again from the start, not each one alone.
    behind = emails[1 : 3 * page]
    before = requests()
    again = await provider.read_states(ready.list_id, behind, since, cursor)
    # The ends of both listings (Mailchimp lists archived members apart), then three pages.
    assert requests() - before <= 2 + 3 < len(behind)
    assert all(again[e] is not None and again[e].status == "subscribed" for e in behind)
    assert harness.inspector.violations() == []
