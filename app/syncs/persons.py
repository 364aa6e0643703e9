"""The full sync's person reads packed into its page reads.

A person is decided from all of its onOffice addresses, so every newsletter-Yes page needs a
second read: every address carrying the page's valid emails (any Newsletter value; see
`incremental.push.read_person_addresses`). That read can only be built once the page is back,
so it travels in the request of the next page read that starts afterwards (onOffice takes
several actions per request): a run costs about one request per page instead of two. A person
read that no page read has taken along after GRACE_S (the last pages, or pages read far ahead
of the classifying loop) is sent in the background with every other one waiting, in one
request; the loop's `take` sends them at once when it needs one sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable

from app.contacts.values import by_person, check_email
from onoffice_client.client import OnOfficeClient
from onoffice_client.emails import EmailQuery
from onoffice_client.models import Address

People = dict[str, list[Address]]
GRACE_S = 0.1  # how long a page's person read waits for a page read to take it along


class PagePersons:
    """`fetch` is the page fetcher for `providers._paging.ordered_pages`; `take(offset, page)`
    gives the people of the page read at `offset` (once); `close` stops the background sends.
    A page read cancelled before it started loses the person reads it took along: cancel only
    when no more pages are taken (`ordered_pages` does so when closed)."""

    def __init__(self, onoffice: OnOfficeClient, *, grace_s: float = GRACE_S) -> None:
        self.onoffice = onoffice
        self.grace_s = grace_s
        self._waiting: dict[int, EmailQuery] = {}  # built, not sent yet
        self._answers: dict[int, asyncio.Future[People]] = {}
        self._later: set[asyncio.Task[None]] = set()

    def fetch(self, offset: int) -> Awaitable[tuple[list[Address], int | None]]:
        """The page read at `offset`, taking along every person read waiting now (when the
        read is launched, not when its task first runs)."""
        return self._fetch(offset, self._claim())

    async def _fetch(
        self, offset: int, carried: dict[int, EmailQuery]
    ) -> tuple[list[Address], int | None]:
        try:
            page, total, answers = await self.onoffice.read_newsletter_page(
                offset, list(carried.values())
            )
        except BaseException as exc:
            self._fail(carried, exc)
            raise
        self._resolve(carried, answers)
        self._add(offset, page)
        task = asyncio.create_task(self._send_later())
        self._later.add(task)
        task.add_done_callback(self._later.discard)
        return page, total

    async def take(self, offset: int, page: list[Address]) -> People:
        if offset not in self._answers:  # not expected: `fetch` read the page
            self._add(offset, page)
        if offset in self._waiting:  # needed now: no page read took it along yet
            await self._send_waiting()
        try:
            return await self._answers[offset]
        finally:
            del self._answers[offset]

    async def close(self) -> None:
        for task in list(self._later):
            task.cancel()
        for task in list(self._later):
            with contextlib.suppress(BaseException):
                await task

    async def _send_later(self) -> None:
        await asyncio.sleep(self.grace_s)
        if self._waiting:
            with contextlib.suppress(Exception):  # handed to `take` through the answers
                await self._send_waiting()

    async def _send_waiting(self) -> None:
        carried = self._claim()
        try:
            answers = await self.onoffice.email_answers(list(carried.values()))
        except BaseException as exc:
            self._fail(carried, exc)
            raise
        self._resolve(carried, answers)

    def _add(self, offset: int, page: list[Address]) -> None:
        checks = (check_email(a.email) for a in self.onoffice.in_scope(page))
        emails = sorted({c.email for c in checks if c.problem is None})
        self._waiting[offset] = self.onoffice.email_query(emails)
        self._answers[offset] = asyncio.get_running_loop().create_future()

    def _claim(self) -> dict[int, EmailQuery]:
        carried, self._waiting = self._waiting, {}
        return carried

    def _resolve(self, carried: dict[int, EmailQuery], answers: list[People]) -> None:
        for offset, found in zip(carried, answers, strict=True):
            if not self._answers[offset].done():
                self._answers[offset].set_result(by_person(found))

    def _fail(self, carried: dict[int, EmailQuery], exc: BaseException) -> None:
        """A request that failed or was cancelled: its person reads wait again when cancelled
        (`take` sends them), or fail with its error (which reaches the reading loop)."""
        if isinstance(exc, asyncio.CancelledError):
            self._waiting.update(carried)
            return
        for offset in carried:
            future = self._answers[offset]
            if not future.done():
                future.set_exception(exc)
                future.add_done_callback(_retrieved)


def _retrieved(future: asyncio.Future[People]) -> None:
    if not future.cancelled():
        future.exception()  # a failure nobody took is not logged as never retrieved
