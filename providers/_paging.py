"""Reading offset-paged collections: one page after another (`offset_items`), or with
several pages in flight (`parallel_pages`).

For `parallel_pages`, the first page tells the total; the remaining offsets are then fetched
`concurrency` at a time (a sliding window, so memory holds at most that many pages) and yielded
as they complete. When the collection grew during the read (the highest page came back full),
reading goes on one page at a time until a short page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# fetch(offset) -> (items of that page, total the provider reports or None)
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


async def parallel_pages(
    fetch: PageFetcher[T], *, page_size: int, concurrency: int
) -> AsyncIterator[list[T]]:
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    concurrency = max(1, concurrency)
    items, total = await fetch(0)
    yield items
    if len(items) < page_size:
        return
    if total is None:  # no total: plain sequential paging
        offset = len(items)
        while True:
            items, _ = await fetch(offset)
            if items:
                yield items
            if len(items) < page_size:
                return
            offset += len(items)
    offsets = iter(range(page_size, total, page_size))
    last_offset = max(0, ((total - 1) // page_size) * page_size)
    last_full = False
    running: dict[asyncio.Task[tuple[list[T], int | None]], int] = {}

    def launch() -> bool:
        offset = next(offsets, None)
        if offset is None:
            return False
        running[asyncio.ensure_future(fetch(offset))] = offset
        return True

    try:
        for _ in range(concurrency):
            if not launch():
                break
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                offset = running.pop(task)
                page, _ = task.result()
                if offset == last_offset and len(page) >= page_size:
                    last_full = True
                launch()
                if page:
                    yield page
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    offset = last_offset + page_size
    while last_full:
        page, _ = await fetch(offset)
        if page:
            yield page
        last_full = len(page) >= page_size
        offset += page_size
