"""A drained batch's settling transaction commits while the next batch works
(`app.webhooks.settling`): one at a time, in order, its error raised to the drain, and the
next batch's transaction still run when the one before it failed."""

from __future__ import annotations

import asyncio

import pytest

from app.webhooks.settling import Settling


async def test_a_deferred_transaction_runs_in_the_background_until_waited_for() -> None:
    done: list[str] = []
    gate = asyncio.Event()

    async def settle(name: str) -> None:
        await gate.wait()
        done.append(name)

    settling = Settling()
    await settling.defer(settle("first"), [1, 2], ["a@x.de"])
    assert settling.ids == {1, 2} and settling.emails == {"a@x.de"}
    assert done == []  # the caller goes on (the next batch) while it runs
    gate.set()
    await settling.defer(settle("second"), [3], ["b@x.de"])  # waits for the first one
    assert done == ["first"] and settling.ids == {3}
    await settling.wait()
    assert done == ["first", "second"] and settling.ids == frozenset()


async def test_a_failed_transaction_is_raised_after_the_next_one_ran() -> None:
    done: list[str] = []

    async def failing() -> None:
        raise RuntimeError("the database is gone")

    async def settle() -> None:
        done.append("second")

    settling = Settling()
    await settling.defer(failing(), [1], ["a@x.de"])
    with pytest.raises(RuntimeError):
        await settling.defer(settle(), [2], ["b@x.de"])
    assert done == ["second"]  # what the second batch wrote is recorded all the same
    await settling.wait()  # nothing left in flight


async def test_a_cancelled_waiter_does_not_cancel_the_commit() -> None:
    done: list[str] = []
    gate = asyncio.Event()

    async def settle() -> None:
        await gate.wait()
        done.append("committed")

    settling = Settling()
    await settling.defer(settle(), [1], ["a@x.de"])
    waiter = asyncio.create_task(settling.wait())
    await asyncio.sleep(0)
    waiter.cancel()  # the drain job timed out while waiting
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert done == ["committed"]
