"""The hourly request budget (Brevo's /processes polls) against Redis, shared by processes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from providers.limits import LocalRequestBudget, RedisRequestBudget, spend


@pytest.mark.usefixtures("redis")
class TestRedisRequestBudget:
    async def test_two_workers_share_one_budget_per_key(self, redis: Any, prefix: str) -> None:
        # A unique prefix: the window is an hour, longer than the gap between two test runs.
        first = RedisRequestBudget(redis, 3, prefix=prefix)
        second = RedisRequestBudget(redis, 3, prefix=prefix)
        taken = [await first.take("key-a"), await second.take("key-a"), await first.take("key-a")]
        assert taken == [0, 0, 0]
        wait = await second.take("key-a")
        assert 3000 < wait <= 3600  # the oldest of the three leaves the hour's window
        assert await first.take("key-b") == 0  # another account has its own budget
        assert await redis.zcard(first.redis_key("key-a")) == 3  # the refused one is not counted

    async def test_spend_waits_for_the_window_and_gives_up_past_a_deadline(
        self, redis: Any, prefix: str
    ) -> None:
        budget = RedisRequestBudget(redis, 1, window_s=0.3, prefix=prefix)
        loop = asyncio.get_running_loop()
        assert await spend(budget, "key")
        assert not await spend(budget, "key", give_up_at=loop.time() + 0.01)
        assert await spend(budget, "key", give_up_at=loop.time() + 5)  # after the window
        assert await redis.zcard(budget.redis_key("key")) == 1


async def test_the_local_budget_counts_per_key() -> None:
    budget = LocalRequestBudget(2)
    assert [await budget.take("k"), await budget.take("k")] == [0, 0]
    assert await budget.take("k") > 3000
    assert await budget.take("other") == 0
