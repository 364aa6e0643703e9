"""Reading an offset-paged collection with several pages in flight, yielded in offset order.

The first page (at `start`) tells the total; the following offsets are then fetched
`concurrency` at a time and yielded strictly in offset order: a page that arrives early waits
in a buffer of at most `2 × concurrency` pages (a sliding window, so memory stays flat), and
the caller can record "everything before offset X is done" after each page (resumable reads).
When the collection grew during the read (the highest page came back full), reading goes on one
page at a time until a short page. `stop()` (checked before each new request) ends the read
early: pages already requested are still yielded, nothing further is asked for.

Used by the providers' list-state reads and by the full sync's onOffice reads. `offset_items`
is the plain one-page-after-another reading (small collections: lists, segments, webhooks).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# fetch(offset) -> (items of that page, total the service reports or None)
PageFetcher = Callable[[int], Awaitable[tuple[list[T], int | None]]]


async def offset_items(
    fetch: PageFetcher[T], *, page_size: int, start: int = 0
) -> AsyncIterator[T]:
    """Every item from `start` on, one page at a time; stops at a short or empty page or when
    the reported total is reached."""
    offset = start
    while True:
        items, total = await fetch(offset)
        for item in items:
            yield item
        offset += len(items)
        if len(items) < page_size or (total is not None and offset >= total):
            return


async def ordered_pages(
    fetch: PageFetcher[T],
    *,
    page_size: int,
    concurrency: int,
    start: int = 0,
    stop: Callable[[], bool] | None = None,
    expected_total: int | None = None,
) -> AsyncGenerator[tuple[int, list[T], int | None], None]:
    """Yield `(offset, items, total)` for every page from `start`, in offset order.

    `expected_total` (e.g. the size of the collection last time) lets the pages up to it be
    requested together with the first one instead of after it (one round trip less); a page
    beyond the real total costs one request that returns nothing."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    concurrency = max(1, concurrency)
    stopped = stop or (lambda: False)
    running: dict[int, asyncio.Task[tuple[list[T], int | None]]] = {}
    ready: dict[int, list[T]] = {}
    try:
        running[start] = asyncio.ensure_future(fetch(start))
        guess = range(start + page_size, expected_total or 0, page_size)
        for at in guess[: concurrency - 1]:
            running[at] = asyncio.ensure_future(fetch(at))
        items, total = await running.pop(start)
        yield start, items, total
        if len(items) < page_size or (total is not None and start + len(items) >= total):
            return
        offset = start + len(items)
        if total is None:  # no total: plain sequential paging
            while not stopped():
                task = running.pop(offset, None) or asyncio.ensure_future(fetch(offset))
                items, _ = await task
                yield offset, items, None
                if len(items) < page_size:
                    return
                offset += len(items)
            return
        for at in [at for at in running if at >= total]:
            running.pop(at).cancel()  # guessed too many
        window = 2 * concurrency
        upcoming = (at for at in range(offset, total, page_size) if at not in running)
        last_offset = start + ((total - 1 - start) // page_size) * page_size
        next_offset = offset
        pending_offset: int | None = next(upcoming, None)

        def launch() -> None:
            nonlocal pending_offset
            while (
                pending_offset is not None
                and len(running) < concurrency
                and pending_offset < next_offset + window * page_size
                and not stopped()
            ):
                running[pending_offset] = asyncio.ensure_future(fetch(pending_offset))
                pending_offset = next(upcoming, None)

        last_full = False
        launch()
        while running or next_offset in ready:
            if next_offset not in ready:
                done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                for at in [at for at, task in running.items() if task in done]:
                    page, _ = running.pop(at).result()
                    ready[at] = page
                launch()
                continue
            page = ready.pop(next_offset)
            if next_offset == last_offset and len(page) >= page_size:
                last_full = True
            yield next_offset, page, total
            next_offset += page_size
            launch()
    finally:
        for task in running.values():
            task.cancel()
        for task in running.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if pending_offset is not None:
        return  # stopped early
    offset = last_offset + page_size
    while last_full and not stopped():
        page, _ = await fetch(offset)
        yield offset, page, total
        last_full = len(page) >= page_size
        offset += page_size


async def parallel_pages(
    fetch: PageFetcher[T],
    *,
    page_size: int,
    concurrency: int,
    start: int = 0,
    expected_total: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> AsyncIterator[list[T]]:
    """The non-empty pages of `ordered_pages`, without their offsets."""
    async for _offset, items, _total in ordered_pages(
        fetch,
        page_size=page_size,
        concurrency=concurrency,
        start=start,
        expected_total=expected_total,
        stop=stop,
    ):
        if items:
            yield items
