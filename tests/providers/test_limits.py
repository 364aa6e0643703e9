"""Concurrency limiters: in-process, Redis across processes, lease expiry of crashed holders."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from providers.limits import (
    ConcurrencyLimiter,
    LimiterTimeoutError,
    LocalConcurrencyLimiter,
    RedisConcurrencyLimiter,
)
from tests.providers.conftest import REDIS_URL
from tests.providers.emulator_process import emulator_process

API_KEY = "0123456789abcdef0123456789abcdef-us1"


async def peak_concurrency(limiter: ConcurrencyLimiter, callers: int, hold_s: float) -> int:
    active = peak = 0

    async def call() -> None:
        nonlocal active, peak
        async with limiter.slot(API_KEY):
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(hold_s)
            active -= 1

    await asyncio.gather(*(call() for _ in range(callers)))
    return peak


async def test_local_limiter_caps_per_key() -> None:
    limiter = LocalConcurrencyLimiter(max_concurrent=4)
    assert await peak_concurrency(limiter, 30, 0.005) == 4


async def test_local_limiter_keys_are_independent() -> None:
    limiter = LocalConcurrencyLimiter(max_concurrent=1)
    async with limiter.slot("a"):
        await asyncio.wait_for(_enter(limiter, "b"), timeout=1)


async def _enter(limiter: ConcurrencyLimiter, key: str) -> None:
    async with limiter.slot(key):
        pass


async def test_redis_limiter_caps_in_one_process(redis: Redis, prefix: str) -> None:
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=5, prefix=prefix)
    assert await peak_concurrency(limiter, 40, 0.01) == 5
    assert await redis.zcard(limiter.redis_key(API_KEY)) == 0  # every slot handed back


async def test_redis_stores_only_a_hash_of_the_key(redis: Redis, prefix: str) -> None:
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=2, prefix=prefix)
    async with limiter.slot(API_KEY):
        keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}:*")]
    assert len(keys) == 1
    assert API_KEY not in keys[0] and "0123456789abcdef" not in keys[0]


async def test_slots_of_a_crashed_process_expire(redis: Redis, prefix: str) -> None:
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=2, lease_s=0.3, prefix=prefix)
    # Two leases taken by a process that then died (never released, never renewed).
    seconds, micros = await redis.time()
    now_ms = seconds * 1000 + micros // 1000
    await redis.zadd(limiter.redis_key(API_KEY), {"dead-1": now_ms + 300, "dead-2": now_ms + 300})
    started = time.monotonic()
    async with limiter.slot(API_KEY):
        waited = time.monotonic() - started
    assert 0.15 <= waited < 5


async def test_held_slot_is_renewed_beyond_its_lease(redis: Redis, prefix: str) -> None:
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=1, lease_s=0.15, prefix=prefix)
    order: list[str] = []

    async def long_holder() -> None:
        async with limiter.slot(API_KEY):
            order.append("first in")
            await asyncio.sleep(0.6)
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.05)
        async with limiter.slot(API_KEY):
            order.append("second in")

    await asyncio.gather(long_holder(), second())
    assert order == ["first in", "first out", "second in"]


async def test_acquire_timeout(redis: Redis, prefix: str) -> None:
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=1, prefix=prefix, acquire_timeout_s=0.2)
    async with limiter.slot(API_KEY):
        with pytest.raises(LimiterTimeoutError):
            await _enter(limiter, API_KEY)


async def test_cancelled_waiter_and_holder_leave_no_slot_behind(redis: Redis, prefix: str) -> None:
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=1, prefix=prefix)

    async def hold() -> None:
        async with limiter.slot(API_KEY):
            await asyncio.sleep(10)

    task = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(_enter(limiter, API_KEY), timeout=2)


# ---------------------------------------------------------------------------------------------
# Two processes, one Redis limiter, one emulator on a real port
# ---------------------------------------------------------------------------------------------

LOAD = textwrap.dedent(
    """
    import asyncio, sys
    from redis.asyncio import Redis
    from providers.limits import RedisConcurrencyLimiter
    from providers.mailchimp import MailchimpClient

    async def main(base, prefix, key, redis_url):
        redis = Redis.from_url(redis_url)
        limiter = RedisConcurrencyLimiter(redis, max_concurrent=10, prefix=prefix)
        client = MailchimpClient(api_key=key, base_url_template=base, limiter=limiter,
                                 max_retries=0)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        async def caller(n):
            for _ in range(3):
                await client.get_contact("nolist", f"p{n}@example.com")
        results = await asyncio.gather(*(caller(n) for n in range(50)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        await client.aclose()
        await redis.aclose()
        print("errors", len(errors), flush=True)

    asyncio.run(main(*sys.argv[1:5]))
    """
)


@pytest.fixture
def emulator_url(tmp_path: Path) -> Iterator[str]:
    args = ["--latency", "0.03", "--api-key", API_KEY]
    log = tmp_path / "mailchimp.log"
    with emulator_process("emulators.mailchimp", args, "/_control/stats", log) as url:
        yield url


async def test_two_processes_share_ten_slots(emulator_url: str, prefix: str) -> None:
    from providers.mailchimp import MailchimpClient

    base = f"{emulator_url}/3.0"
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOAD,
        base,
        prefix,
        API_KEY,
        REDIS_URL,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert other.stdout is not None and other.stdin is not None
    assert (await asyncio.wait_for(other.stdout.readline(), 60)).strip() == b"ready"

    redis = Redis.from_url(REDIS_URL)
    limiter = RedisConcurrencyLimiter(redis, max_concurrent=10, prefix=prefix)
    client = MailchimpClient(
        api_key=API_KEY, base_url_template=base, limiter=limiter, max_retries=0
    )

    async def caller(n: int) -> None:
        for _ in range(3):
            assert await client.get_contact("nolist", f"q{n}@example.com") is None

    other.stdin.write(b"go\n")
    await other.stdin.drain()
    try:
        await asyncio.gather(*(caller(n) for n in range(50)))
        out, _ = await asyncio.wait_for(other.communicate(), 60)
    finally:
        await client.aclose()
        await redis.aclose()
    assert out.strip() == b"errors 0"

    async with httpx.AsyncClient() as http:
        stats: dict[str, Any] = (await http.get(f"{emulator_url}/_control/stats")).json()
    assert stats["total_requests"] == 300
    assert stats["concurrency_rejections"] == 0
    assert 5 <= stats["max_concurrency"] <= 10
