"""The full sync's person reads (issue #17: one person across duplicates, at the price of the
benchmark's figures): every address carrying a page's valid emails, one request per page,
fetched with the page itself. Against the onOffice emulator, in-process."""

from __future__ import annotations

from app.incremental.push import read_person_addresses
from app.syncs.read import pages_with_persons
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


async def test_each_page_comes_with_its_people(
    state: OnOfficeState,  # noqa: F811
    make_client: ClientFactory,  # noqa: F811
) -> None:
    # 5 newsletter-Yes pages of 2 (the last short); every Yes address has a No duplicate.
    state.seed([yes(f"p{i}@x.de") for i in range(9)] + [no(f"P{i}@X.de") for i in range(9)])
    onoffice = make_client(page_size=2)
    fetch, persons = pages_with_persons(onoffice)
    before = state.http_requests

    seen: dict[str, list[str]] = {}
    async for at, page, _total in ordered_pages(fetch, page_size=2, concurrency=3):
        others = persons.pop(at)
        assert sorted(others) == sorted(a.email for a in page)
        for email, found in others.items():
            seen[email] = sorted(a.newsletter.name for a in found)

    assert seen == {f"p{i}@x.de": ["no", "yes"] for i in range(9)}
    assert persons == {}
    # One page read and one person read per page, nothing else.
    assert state.http_requests - before == 10
