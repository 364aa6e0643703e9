"""Group commit of webhook deliveries: concurrent requests share one transaction.

A request hands its rows to the process's writer and waits for its own result; the answer goes
out only after the statement holding its rows committed ("stored before acknowledged"). While
one group is written, new deliveries queue; the next write takes all of them (up to
`max_rows`), so a burst costs one statement per group instead of a transaction per delivery
(on PostgreSQL the check of the connections and the multi-row INSERT are one statement, one
round trip, its own transaction), and a lone delivery waits for nobody. A failed statement
stores nothing (it is atomic); each delivery of the group is then written alone, so only a
delivery that fails on its own is answered with a retry, never its neighbours.

Each delivery names the connection state it was checked against (provider, token, secret,
list: `IngestCheck`, from a cached lookup). The group's statement stores a delivery only if
its connection is unchanged; otherwise the delivery gets `StaleConnection` and the caller
looks the token up again, so a replaced token is refused at once, cache or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.models import Connection
from app.inbox.repository import InboundEventRepository, IngestCheck, IngestRow

log = logging.getLogger(__name__)

# Rows per transaction: a group stays one short statement batch (Brevo sends up to 500 events
# in one delivery; a bigger delivery is flushed alone).
MAX_GROUP_ROWS = 1000
# How long the writer keeps its connection after the last delivery.
LINGER_S = 0.05
# Drains started at once after a group's commit (one per connection that got new rows).
KICK_CONCURRENCY = 32


def check_of(connection: Connection) -> IngestCheck:
    """What ingest relies on: provider, token hash, secret hash, list id."""
    return IngestCheck(
        connection.id,
        connection.provider,
        connection.webhook_token,
        connection.webhook_secret_hash,
        connection.list_id,
    )


class StaleConnection(Exception):
    """The connection changed (or went) since it was looked up: look the token up again."""


@dataclass(eq=False)
class _Delivery:
    checked: IngestCheck
    rows: Sequence[IngestRow]
    kick: bool
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


Kick = Callable[[int], Awaitable[object]]


class IngestWriter:
    """`kick(connection_id)` runs after each commit, once per connection that got new rows
    from a delivery stored with `kick=True` (the drain's start: app.inbox.owner.kick), in
    the background: the next group does not wait for it.

    One write loop runs while deliveries arrive; it keeps its database connection from one
    group to the next (one pool checkout, and its liveness ping, per burst rather than per
    group) and gives it back when nothing arrived for LINGER_S."""

    def __init__(self, engine: AsyncEngine, kick: Kick, *, max_rows: int = MAX_GROUP_ROWS) -> None:
        self._engine = engine
        self._kick = kick
        self._max_rows = max_rows
        self._waiting: deque[_Delivery] = deque()
        self._loop: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

    async def store(
        self,
        checked: IngestCheck,
        rows: Sequence[IngestRow],
        *,
        kick: bool = True,
    ) -> int:
        """Store the rows (committed) and return how many were new; `StaleConnection` when
        the connection no longer matches `checked`; the database's error when the group's
        transaction failed. The answer does not wait for the kick (a failed kick loses
        nothing: the sweep starts the drain)."""
        delivery = _Delivery(checked, rows, kick)
        self._waiting.append(delivery)
        if self._loop is None:
            self._loop = self._spawn(self._run())
        else:
            self._arrived.set()
        return await delivery.done

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _take(self) -> list[_Delivery]:
        group: list[_Delivery] = []
        rows = 0
        while self._waiting:
            delivery = self._waiting[0]
            if group and rows + len(delivery.rows) > self._max_rows:
                break
            self._waiting.popleft()
            if delivery.done.done():  # its request was cancelled while it waited
                continue
            group.append(delivery)
            rows += len(delivery.rows)
        return group

    async def aclose(self) -> None:
        """Wait for the writes and kicks under way (the API's shutdown)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def _run(self) -> None:
        conn: AsyncConnection | None = None
        try:
            while True:
                group = self._take()
                if not group:
                    if conn is None or not await self._more_within(LINGER_S):
                        return
                    continue
                outcome: list[int | StaleConnection] | Exception
                broken = None
                try:
                    conn = conn or await _autocommit(self._engine)
                    outcome = await self._write(conn, group)
                except Exception as exc:
                    log.error(
                        "webhook.group_not_stored", extra={"deliveries": len(group)}, exc_info=exc
                    )
                    outcome, broken, conn = exc, conn, None  # maybe broken: a fresh one next
                except BaseException:
                    for delivery in group:
                        delivery.done.cancel()
                    raise
                if broken is not None:
                    await _close(broken)
                if isinstance(outcome, Exception) and len(group) > 1:
                    # One delivery's failure must not fail its neighbours: each is tried
                    # alone, and only the ones that fail again are answered with the error.
                    await self._one_by_one(group)
                    continue
                self._answer(group, outcome)
        finally:
            if conn is not None:
                await _close(conn)
            self._loop = None
            if self._waiting:  # arrived while the connection was given back
                self._loop = self._spawn(self._run())

    async def _one_by_one(self, group: list[_Delivery]) -> None:
        for delivery in group:
            if delivery.done.done():
                continue
            outcome: list[int | StaleConnection] | Exception
            try:
                conn = await _autocommit(self._engine)
                try:
                    outcome = await self._write(conn, [delivery])
                finally:
                    await _close(conn)
            except Exception as exc:
                log.error("webhook.delivery_not_stored", exc_info=exc)
                outcome = exc
            self._answer([delivery], outcome)

    async def _more_within(self, seconds: float) -> bool:
        """Whether a delivery arrives within `seconds` (the connection is kept meanwhile)."""
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), seconds)
        except TimeoutError:
            return bool(self._waiting)
        return True

    def _answer(
        self, group: list[_Delivery], results: list[int | StaleConnection] | Exception
    ) -> None:
        if isinstance(results, Exception):
            for delivery in group:
                if not delivery.done.done():
                    delivery.done.set_exception(results)
            return
        kicks: set[int] = set()
        for delivery, result in zip(group, results, strict=True):
            if isinstance(result, int) and result and delivery.kick:
                kicks.add(delivery.checked.connection_id)
            if delivery.done.done():
                continue
            if isinstance(result, StaleConnection):
                delivery.done.set_exception(result)
            else:
                delivery.done.set_result(result)
        if kicks:
            self._spawn(self._kick_all(sorted(kicks)))

    async def _kick_all(self, connection_ids: list[int]) -> None:
        # Concurrently (a few Redis round trips each): a group of deliveries for 200 tenants
        # kicked one after another started the last drain about a second late.
        gate = asyncio.Semaphore(KICK_CONCURRENCY)

        async def kick(connection_id: int) -> None:
            async with gate:
                try:
                    await self._kick(connection_id)
                except Exception as exc:
                    log.warning(
                        "webhook.kick_failed", extra={"connection_id": connection_id}, exc_info=exc
                    )

        await asyncio.gather(*(kick(c) for c in connection_ids))

    async def _write(
        self, conn: AsyncConnection, group: list[_Delivery]
    ) -> list[int | StaleConnection]:
        """The group's one statement; per delivery its new rows, or StaleConnection."""
        fresh, new = await InboundEventRepository.ingest_group(
            conn, [(d.checked, d.rows) for d in group]
        )
        results: list[int | StaleConnection] = []
        for delivery, ok in zip(group, fresh, strict=True):
            if not ok:
                results.append(StaleConnection())
                continue
            count = 0
            for row in delivery.rows:  # the first delivery of a key in the group counts it
                key = (row.source, row.dedupe_key)
                if key in new:
                    new.discard(key)
                    count += 1
            results.append(count)
        return results


async def _autocommit(engine: AsyncEngine) -> AsyncConnection:
    """A pooled connection without transaction round trips: each group is one statement."""
    conn = await engine.connect()
    try:
        return await conn.execution_options(isolation_level="AUTOCOMMIT")
    except BaseException:
        await conn.close()
        raise


async def _close(conn: AsyncConnection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # a broken connection: the pool discards it
        log.warning("webhook.writer_connection_close_failed", exc_info=exc)
