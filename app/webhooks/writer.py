"""Group commit of webhook deliveries: concurrent requests share one transaction.

A request hands its rows to the process's writer and waits for its own result; the answer goes
out only after the transaction holding its rows committed ("stored before acknowledged"). While
a commit is in flight, new deliveries queue; the next flush takes all of them (up to
`max_rows`), so a burst costs one transaction (BEGIN, a check of the connections, one
multi-row INSERT, COMMIT) per group instead of per delivery, and a lone delivery waits for
nobody. A failed transaction fails every delivery of its group (all answered with a retry,
nothing stored: it is one transaction).

Each delivery names the connection state it was checked against (token, secret, list:
`Fingerprint`, from a cached lookup). The flush reads those connections in its transaction and
stores a delivery only if they are unchanged; otherwise the delivery gets `StaleConnection` and
the caller looks the token up again, so a replaced token is refused at once, cache or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import Connection
from app.webhooks.repository import InboundEventRepository, IngestRow

log = logging.getLogger(__name__)

Fingerprint = tuple[str, str, str | None, str | None]

# Rows per transaction: a group stays one short statement batch (Brevo sends up to 500 events
# in one delivery; a bigger delivery is flushed alone).
MAX_GROUP_ROWS = 1000


def fingerprint(connection: Connection) -> Fingerprint:
    """What ingest relies on (provider, token hash, secret hash, list id)."""
    return (
        connection.provider,
        connection.webhook_token,
        connection.webhook_secret_hash,
        connection.list_id,
    )


class StaleConnection(Exception):
    """The connection changed (or went) since it was looked up: look the token up again."""


@dataclass(eq=False)
class _Delivery:
    connection_id: int
    checked: Fingerprint
    rows: Sequence[IngestRow]
    kick: bool
    done: asyncio.Future[int] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


Kick = Callable[[int], Awaitable[object]]


class IngestWriter:
    """`kick(connection_id)` runs after each commit, once per connection that got new rows
    from a delivery stored with `kick=True` (the drain's start: app.webhooks.owner.kick)."""

    def __init__(self, engine: AsyncEngine, kick: Kick, *, max_rows: int = MAX_GROUP_ROWS) -> None:
        self._engine = engine
        self._kick = kick
        self._max_rows = max_rows
        self._waiting: deque[_Delivery] = deque()
        self._flushing: set[asyncio.Task[None]] = set()

    async def store(
        self,
        connection_id: int,
        checked: Fingerprint,
        rows: Sequence[IngestRow],
        *,
        kick: bool = True,
    ) -> int:
        """Store the rows (committed) and return how many were new; `StaleConnection` when
        the connection no longer matches `checked`; the database's error when the group's
        transaction failed. The answer does not wait for the kick (a failed kick loses
        nothing: the sweep starts the drain)."""
        delivery = _Delivery(connection_id, checked, rows, kick)
        self._waiting.append(delivery)
        self._start()
        return await delivery.done

    def _start(self) -> None:
        if self._flushing or not self._waiting:
            return
        group = self._take()
        if not group:
            return
        task = asyncio.create_task(self._flush(group))
        self._flushing.add(task)
        task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        self._start()

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

    async def _flush(self, group: list[_Delivery]) -> None:
        try:
            results = await self._write(group)
        except Exception as exc:
            log.error("webhook.group_not_stored", extra={"deliveries": len(group)}, exc_info=exc)
            for delivery in group:
                if not delivery.done.done():
                    delivery.done.set_exception(exc)
            return
        except BaseException:
            for delivery in group:
                delivery.done.cancel()
            raise
        kicks: set[int] = set()
        for delivery, result in zip(group, results, strict=True):
            if isinstance(result, int) and result and delivery.kick:
                kicks.add(delivery.connection_id)
            if delivery.done.done():
                continue
            if isinstance(result, StaleConnection):
                delivery.done.set_exception(result)
            else:
                delivery.done.set_result(result)
        for connection_id in sorted(kicks):
            try:
                await self._kick(connection_id)
            except Exception as exc:
                log.warning(
                    "webhook.kick_failed", extra={"connection_id": connection_id}, exc_info=exc
                )

    async def _write(self, group: list[_Delivery]) -> list[int | StaleConnection]:
        """One transaction for the group; per delivery its new rows, or StaleConnection."""
        async with self._engine.begin() as conn:
            current = await InboundEventRepository.connection_fingerprints(
                conn, {d.connection_id for d in group}
            )
            fresh = [current.get(d.connection_id) == d.checked for d in group]
            rows = [row for d, ok in zip(group, fresh, strict=True) if ok for row in d.rows]
            new = await InboundEventRepository.ingest(conn, rows)
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
