"""A drained batch's settling transaction, committed while the next batch works.

After a batch's grouped onOffice writes, one transaction records every event's outcome and
what the ledger learned (`app.webhooks.outcomes.settle`). It is not on the drain's critical
path: the next batch reads its events (leaving out the ones still settling), looks up its
addresses and writes onOffice meanwhile, and waits for it only where it must:

- before a batch that holds an email of the settling one reads its ledger (order per person);
- before a later wave of the same batch (its events' emails were in the earlier wave);
- before the next settling transaction (one at a time, committed in order);
- before the drain job looks at what is left, hands over, gives up its flag or fails.

Only a batch whose writes all succeeded settles this way; one with a failure settles at once,
as before. A settling transaction that fails is raised to the drain (the job fails and is
tried again, as when the transaction failed inline); the next batch's transaction still runs
first, so that what that batch wrote is recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection


class Settling:
    """The one settling transaction in flight for a drain job (`EventApplier.settling`)."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self.ids: frozenset[int] = frozenset()  # its events: still pending in the database
        self.emails: frozenset[str] = frozenset()

    async def defer(
        self, settle: Awaitable[None], ids: Collection[int], emails: Collection[str]
    ) -> None:
        """Commit `settle` in the background, after the one before it."""
        try:
            await self.wait()
        except BaseException:
            await settle  # this batch's outcomes are recorded before the error is raised
            raise
        self._task = asyncio.ensure_future(settle)
        self.ids, self.emails = frozenset(ids), frozenset(emails)

    async def wait(self) -> None:
        """Wait until the transaction in flight (if any) has committed; raises its error."""
        task, self._task = self._task, None
        self.ids, self.emails = frozenset(), frozenset()
        if task is not None:
            await asyncio.shield(task)  # a cancelled drain job does not cancel the commit
