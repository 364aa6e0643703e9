"""The Mailchimp connection limiter (a Redis lease semaphore) never fails a request that was
made because Redis went away while it ran: the answer is kept (failing it would only make the
caller send the request again), and the slot frees itself after its lease."""

from __future__ import annotations

import asyncio

import redis.asyncio

from providers.limits import RedisConcurrencyLimiter
from tests.reliability.conftest import ThrowawayRedis


async def test_a_request_whose_slot_cannot_be_given_back_keeps_its_answer(
    throwaway_redis: ThrowawayRedis,
) -> None:
    client = redis.asyncio.Redis.from_url(throwaway_redis.url)
    limiter = RedisConcurrencyLimiter(client, max_concurrent=2, lease_s=0.6)
    try:
        answer = None
        async with limiter.slot("api-key"):
            throwaway_redis.kill()  # Redis goes away while the request is in flight
            await asyncio.sleep(0.5)  # the lease's renewal (every 0.2 s) fails meanwhile
            answer = "accepted"
        assert answer == "accepted"
        # Redis back: the limiter works again.
        throwaway_redis.start()
        async with limiter.slot("api-key"):
            assert await client.zcard(limiter.redis_key("api-key")) == 1
    finally:
        await client.aclose()
