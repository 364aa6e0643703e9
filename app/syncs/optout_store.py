"""Where the full sync's opt-out re-checks are shared (`app/syncs/optouts.py`): in Redis across
workers, or in the process in embedded mode. One store per process (`app/parts.py`).

Two ways to share a check. With `OPT_OUT_RECHECK_S > 0`: a claim that expires after the
interval (one worker asks the provider per interval). With `0`: tickets. A batch that needs an
answer takes a ticket (`ask`); a check may serve it only if the check began after that ticket
was taken: its leader reads the number of tickets taken (`lead`) before it asks the provider
and, when done, records that number as covered (`finish`). Batches that ask while a check is
under way wait for the next one and share it.
"""

from __future__ import annotations

import time
from typing import Any

PREFIX = "connector:optouts"
KEEP_S = 24 * 3600  # the shared answer outlives any run
LEAD_S = 10.0  # a leader that died mid-check is replaced after this long (a check: < 1 s)

# Raise "covered" only: a slow leader replaced after LEAD_S must not lower it.
_COVER = """
local old = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > old then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
redis.call('DEL', KEYS[2])
return 1
"""


class RedisOptOuts:
    """Shared by every worker: the claim or the tickets, and the set of opt-outs found so far
    for the run."""

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

    async def ask(self, run_id: int) -> int:
        key = f"{PREFIX}:{run_id}:asks"
        ticket = int(await self._redis.incr(key))
        await self._redis.expire(key, KEEP_S)
        return ticket

    async def covered(self, run_id: int) -> int:
        return int(await self._redis.get(f"{PREFIX}:{run_id}:covered") or 0)

    async def lead(self, run_id: int) -> int | None:
        """The tickets a check starting now covers, or None while another check is under way."""
        key = f"{PREFIX}:{run_id}:lead"
        if not await self._redis.set(key, b"1", nx=True, px=int(LEAD_S * 1000)):
            return None
        return int(await self._redis.get(f"{PREFIX}:{run_id}:asks") or 0)

    async def finish(self, run_id: int, covers: int, emails: set[str]) -> None:
        """Record a check's answer (first), then the tickets it covers, and end the lead."""
        await self.add(run_id, emails)
        keys = [f"{PREFIX}:{run_id}:covered", f"{PREFIX}:{run_id}:lead"]
        await self._redis.eval(_COVER, 2, *keys, covers, KEEP_S)

    async def abandon(self, run_id: int) -> None:
        """A check that failed: the next waiting batch leads one."""
        await self._redis.delete(f"{PREFIX}:{run_id}:lead")


class LocalOptOuts:
    """Embedded mode: one process runs every job."""

    def __init__(self) -> None:
        self._claims: dict[int, float] = {}
        self._emails: dict[int, set[str]] = {}
        self._asks: dict[int, int] = {}
        self._covered: dict[int, int] = {}
        self._leads: set[int] = set()

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

    async def ask(self, run_id: int) -> int:
        self._asks[run_id] = self._asks.get(run_id, 0) + 1
        return self._asks[run_id]

    async def covered(self, run_id: int) -> int:
        return self._covered.get(run_id, 0)

    async def lead(self, run_id: int) -> int | None:
        if run_id in self._leads:
            return None
        self._leads.add(run_id)
        return self._asks.get(run_id, 0)

    async def finish(self, run_id: int, covers: int, emails: set[str]) -> None:
        await self.add(run_id, emails)
        self._covered[run_id] = max(covers, self._covered.get(run_id, 0))
        self._leads.discard(run_id)

    async def abandon(self, run_id: int) -> None:
        self._leads.discard(run_id)


OptOutStore = RedisOptOuts | LocalOptOuts


def opt_out_store(redis: Any | None) -> OptOutStore:
    return RedisOptOuts(redis) if redis is not None else LocalOptOuts()
