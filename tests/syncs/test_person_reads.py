"""The full sync's person reads (issue #17: one person across duplicates, at the price of the
benchmark's figures): every address carrying a page's valid emails, read in the request of a
later page (app/syncs/persons.py). Against the onOffice emulator, in-process."""

from __future__ import annotations

import asyncio

from app.incremental.push import read_person_addresses
from app.syncs.persons import GRACE_S, PagePersons
from emulators.onoffice import OnOfficeState
from onoffice_client.client import OnOfficeClient
from providers._paging import ordered_pages
from tests.onoffice.conftest import (  # noqa: F401  (fixtures)
    ClientFactory,
    client,
    http,
    make_client,
    state,
)


def yes(email: str) -> dict[str, object]:
    return {"Email": email, "newsletter_aktiv": "1", "Status": "1"}


def no(email: str) -> dict[str, object]:
    return {"Email": email, "newsletter_aktiv": "0", "Status": "1"}


async def test_invalid_emails_are_not_asked_for(
    state: OnOfficeState,  # noqa: F811
    client: OnOfficeClient,  # noqa: F811
) -> None:
    # Hundreds of addresses share an invalid value: asking for it would page through them all.
    ids = state.seed([yes("a@b") for _ in range(700)] + [yes("anna@x.de"), no(" anna@x.de")])
    page = await client.get_addresses([ids[0], ids[700]])
    before = state.http_requests

    people = await read_person_addresses(client, page)

    assert state.http_requests - before == 1
    assert {e: [a.id for a in found] for e, found in people.items()} == {"anna@x.de": ids[700:]}


async def test_each_page_comes_with_its_people_in_the_request_of_a_later_page(
    state: OnOfficeState,  # noqa: F811
    make_client: ClientFactory,  # noqa: F811
) -> None:
    # 9 newsletter-Yes pages of 2 (the last short); every Yes address has a No duplicate.
    state.seed([yes(f"p{i}@x.de") for i in range(17)] + [no(f"P{i}@X.de") for i in range(17)])
    state.latency = 0.02  # the loop waits for pages, as the full sync's does when idle
    onoffice = make_client(page_size=2)
    persons = PagePersons(onoffice, grace_s=60.0)  # nothing sent in the background
    before, actions_before = state.http_requests, sum(state.request_counts.values())

    seen: dict[str, list[str]] = {}
    async for at, page, _total in ordered_pages(persons.fetch, page_size=2, concurrency=3):
        others = await persons.take(at, page)
        assert sorted(others) == sorted(a.email for a in page)
        for email, found in others.items():
            seen[email] = sorted(a.newsletter.name for a in found)

    assert seen == {f"p{i}@x.de": ["no", "yes"] for i in range(17)}
    # Every page read once and every person read once (one `in` action each) ...
    assert sum(state.request_counts.values()) - actions_before == 9 + 9
    # ... in far fewer requests than one each (18): the person reads ride on later page
    # reads; only the first page's (nothing else in flight) and those of the last pages (no
    # page read after them) take requests of their own.
    requests = state.http_requests - before
    assert requests == 9 + 2, requests


async def test_person_reads_no_page_read_took_along_are_sent_together_in_the_background(
    state: OnOfficeState,  # noqa: F811
    make_client: ClientFactory,  # noqa: F811
) -> None:
    # The loop takes the people only after every page was read (the last one short), and
    # later still: no page read took along those of the last pages.
    state.seed([yes(f"p{i}@x.de") for i in range(5)] + [no(f"P{i}@X.de") for i in range(5)])
    onoffice = make_client(page_size=2)
    persons = PagePersons(onoffice)
    before = state.http_requests
    fetched = ordered_pages(persons.fetch, page_size=2, concurrency=3)
    pages = [(at, page) async for at, page, _ in fetched]
    await asyncio.sleep(3 * GRACE_S)
    sent = state.http_requests - before

    people = [await persons.take(at, page) for at, page in pages]

    assert state.http_requests - before == sent  # nothing left to send when taken
    assert 3 < sent <= 3 + 1, sent  # three page reads; at most one for the person reads
    assert [sorted(p) for p in people] == [sorted(a.email for a in page) for _at, page in pages]
    assert all(
        sorted(x.newsletter.name for x in found) == ["no", "yes"]
        for p in people
        for found in p.values()
    )
    await persons.close()


async def test_a_page_not_read_through_fetch_still_gets_its_people(
    state: OnOfficeState,  # noqa: F811
    client: OnOfficeClient,  # noqa: F811
) -> None:
    ids = state.seed([yes("anna@x.de"), no(" Anna@X.de")])
    page = await client.get_addresses([ids[0]])

    people = await PagePersons(client).take(0, page)

    assert {e: [a.id for a in found] for e, found in people.items()} == {"anna@x.de": ids}
