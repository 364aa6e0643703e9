"""Rate pacers: Brevo's 10 requests/s on /contacts hold across processes sharing one key."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from providers.limits import LocalRatePacer, RatePacer, RedisRatePacer
from tests.providers.conftest import REDIS_URL
from tests.providers.emulator_process import emulator_process

BREVO_KEY = "test-key-de"  # seeded by `python -m emulators.brevo`


async def send_times(pacer: RatePacer, calls: int, key: str = "k") -> list[float]:
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await pacer.wait(key)
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(calls)))
    return sorted(times)


def most_in_window(times: list[float], window: float) -> int:
    """The most requests that fall into any `window` seconds: a burst shows as many at once,
    while a wake-up the loaded machine delays only moves one request closer to the next."""
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_local_pacer_spaces_requests_without_burst() -> None:
    times = await send_times(LocalRatePacer(50.0), 11)
    assert times[-1] - times[0] >= 10 / 50 - 0.01
    assert most_in_window(times, 0.1) <= 6  # 50/s: 5 per 100 ms, one late wake-up allowed


async def test_local_pacer_keys_are_independent() -> None:
    pacer = LocalRatePacer(2.0)
    await pacer.wait("a")
    started = time.monotonic()
    await pacer.wait("b")
    assert time.monotonic() - started < 0.1


async def test_redis_pacer_spaces_requests_and_stores_only_a_hash(
    redis: Redis, prefix: str
) -> None:
    pacer = RedisRatePacer(redis, 50.0, prefix=prefix)
    times = await send_times(pacer, 11, key=BREVO_KEY)
    assert times[-1] - times[0] >= 10 / 50 - 0.01
    keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}:*")]
    assert keys == [pacer.redis_key(BREVO_KEY)] and BREVO_KEY not in keys[0]
    assert 0 < await redis.pttl(keys[0]) <= 2000  # the reservation expires by itself


# ---------------------------------------------------------------------------------------------
# Two processes, one Brevo account, one emulator enforcing 10 requests/s on a real port
# ---------------------------------------------------------------------------------------------

LOAD = textwrap.dedent(
    """
    import asyncio, sys
    from redis.asyncio import Redis
    from providers.brevo import BrevoClient
    from providers.limits import LocalRatePacer, RedisRatePacer

    # 6/s, not the production 9/s: a loaded machine may send a reserved request late, and the
    # slack keeps such bunching under the emulator's 10/s, while two self-paced workers (12/s)
    # still exceed it.
    RATE = 6.0

    async def main(base, prefix, key, redis_url, mode, calls):
        redis = Redis.from_url(redis_url)
        pacer = RedisRatePacer(redis, RATE, prefix=prefix) if mode == "redis" else None
        client = BrevoClient(
            api_key=key, base_url=base, pacer=pacer, requests_per_second=RATE, max_retries=0
        )
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        results = await asyncio.gather(
            *(client.get_contact("1", f"p{n}@example.com") for n in range(int(calls))),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        await client.aclose()
        await redis.aclose()
        print("errors", len(errors), flush=True)

    asyncio.run(main(*sys.argv[1:7]))
    """
)


@pytest.fixture
def brevo_url(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "brevo.log"
    with emulator_process("emulators.brevo", ["--latency", "0.02"], "/_control/state", log) as url:
        yield url


async def two_processes(brevo_url: str, prefix: str, mode: str, calls: int) -> tuple[int, float]:
    """Both processes send `calls` /contacts requests at once; returns (errors, seconds)."""
    procs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LOAD,
            f"{brevo_url}/v3",
            prefix,
            BREVO_KEY,
            REDIS_URL,
            mode,
            str(calls),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        procs.append(proc)
    started = time.monotonic()
    outs = await asyncio.gather(*(asyncio.wait_for(p.communicate(b"go\n"), 60) for p in procs))
    elapsed = time.monotonic() - started
    errors = sum(int(out.split()[-1]) for out, _ in outs)
    return errors, elapsed


async def rate_limited(brevo_url: str) -> int:
    async with httpx.AsyncClient() as http:
        state: dict[str, Any] = (await http.get(f"{brevo_url}/_control/state")).json()
    return int(state["rate_limited"])


async def test_two_workers_share_the_brevo_budget(brevo_url: str, prefix: str) -> None:
    errors, elapsed = await two_processes(brevo_url, prefix, "redis", calls=12)
    assert errors == 0
    assert await rate_limited(brevo_url) == 0
    assert elapsed >= 23 / 6 - 0.2  # 24 requests, 1/6 s apart, whichever process sends them


async def test_per_process_pacers_exceed_the_budget(brevo_url: str, prefix: str) -> None:
    """The failure the shared pacer prevents: two workers pacing themselves send 18/s."""
    errors, _ = await two_processes(brevo_url, prefix, "local", calls=12)
    assert await rate_limited(brevo_url) > 0
    assert errors > 0
