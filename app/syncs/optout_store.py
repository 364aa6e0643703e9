"""Where the full sync's opt-out re-checks are shared (`app/syncs/optouts.py`): in Redis across
workers, or in the process in embedded mode. One store per process (`app/parts.py`)."""

from __future__ import annotations

import time
from typing import Any

PREFIX = "connector:optouts"
KEEP_S = 24 * 3600  # the shared answer outlives any run


class RedisOptOuts:
    """Shared by every worker: a claim key that expires after the interval (one worker asks
    the provider per interval) and the set of opt-outs found so far for the run."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def claim(self, run_id: int, interval: float) -> bool:
        key = f"{PREFIX}:{run_id}:claim"
        return bool(await self._redis.set(key, b"1", nx=True, px=max(1, int(interval * 1000))))

    async def release(self, run_id: int) -> None:
        await self._redis.delete(f"{PREFIX}:{run_id}:claim")

    async def add(self, run_id: int, emails: set[str]) -> None:
        key = f"{PREFIX}:{run_id}:emails"
        if emails:
            await self._redis.sadd(key, *sorted(emails))
        await self._redis.expire(key, KEEP_S)

    async def emails(self, run_id: int) -> set[str]:
        members = await self._redis.smembers(f"{PREFIX}:{run_id}:emails")
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}


class LocalOptOuts:
    """Embedded mode: one process runs every job."""

    def __init__(self) -> None:
        self._claims: dict[int, float] = {}
        self._emails: dict[int, set[str]] = {}

    async def claim(self, run_id: int, interval: float) -> bool:
        now = time.monotonic()
        if now - self._claims.get(run_id, float("-inf")) < interval:
            return False
        self._claims[run_id] = now
        return True

    async def release(self, run_id: int) -> None:
        self._claims.pop(run_id, None)

    async def add(self, run_id: int, emails: set[str]) -> None:
        self._emails.setdefault(run_id, set()).update(emails)

    async def emails(self, run_id: int) -> set[str]:
        return set(self._emails.get(run_id, ()))


OptOutStore = RedisOptOuts | LocalOptOuts


def opt_out_store(redis: Any | None) -> OptOutStore:
    return RedisOptOuts(redis) if redis is not None else LocalOptOuts()
