"""Parallel paged reads yielded in offset order (the full sync's onOffice and list-state reads)."""

from __future__ import annotations

import asyncio

from providers._paging import ordered_pages, parallel_pages


class Collection:
    """An offset-paged collection whose later pages answer faster than earlier ones."""

    def __init__(self, size: int, page_size: int) -> None:
        self.items = list(range(size))
        self.page_size = page_size
        self.requests: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.completed: list[int] = []

    async def fetch(self, offset: int) -> tuple[list[int], int | None]:
        self.requests.append(offset)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # Page 0 is quick (it tells the total); then the higher the offset, the faster.
            await asyncio.sleep(0 if offset == 0 else 0.05 / (1 + offset / self.page_size))
        finally:
            self.in_flight -= 1
        self.completed.append(offset)
        return self.items[offset : offset + self.page_size], len(self.items)


async def test_pages_arrive_out_of_order_but_are_yielded_in_offset_order() -> None:
    books = Collection(1050, 100)
    seen = [
        (offset, items[0] if items else None, total)
        async for offset, items, total in ordered_pages(books.fetch, page_size=100, concurrency=4)
    ]
    assert [offset for offset, _, _ in seen] == list(range(0, 1100, 100))
    assert [first for _, first, _ in seen] == list(range(0, 1100, 100))
    assert {total for _, _, total in seen} == {1050}
    assert sorted(books.requests) == list(range(0, 1100, 100))  # each page read once
    assert books.max_in_flight == 4
    # They really were out of order: a later page completed before an earlier one.
    assert books.completed != sorted(books.completed)


async def test_resume_from_an_offset_and_stop_requests_no_further_page() -> None:
    books = Collection(2000, 100)
    got: list[int] = []
    stop = False
    pages = ordered_pages(books.fetch, page_size=100, concurrency=3, start=500, stop=lambda: stop)
    async for offset, _items, _total in pages:
        got.append(offset)
        if offset == 800:
            stop = True
    asked = sorted(books.requests)
    assert asked[0] == 500
    assert got == asked  # every page requested is still yielded, in order, none skipped
    assert got == list(range(500, got[-1] + 100, 100))
    assert got[-1] < 1900  # stopped before the end


async def test_collection_that_grew_is_read_to_its_end_and_flat_pages_skip_empties() -> None:
    books = Collection(300, 100)
    real_fetch = books.fetch

    async def growing(offset: int) -> tuple[list[int], int | None]:
        items, total = await real_fetch(offset)
        if offset == 0:
            books.items.extend(range(300, 450))  # grew after the total was told
        return items, total

    pages = [p async for p in parallel_pages(growing, page_size=100, concurrency=2)]
    assert [p[0] for p in pages] == [0, 100, 200, 300, 400]
    assert sum(len(p) for p in pages) == 450


async def test_an_expected_total_starts_the_pages_with_the_first_one() -> None:
    books = Collection(450, 100)
    first_done: list[int] = []

    async def fetch(offset: int) -> tuple[list[int], int | None]:
        answer = await books.fetch(offset)
        if offset == 0:
            first_done.append(len(books.requests))  # requests made before page 0 returned
        return answer

    pages = ordered_pages(fetch, page_size=100, concurrency=5, expected_total=450)
    offsets = [offset async for offset, _items, _total in pages]
    assert offsets == [0, 100, 200, 300, 400]
    assert first_done == [5]  # all five pages were asked for at once, not after the first
    assert sorted(books.requests) == offsets
