"""Caps on simultaneous requests and on request rates per provider API key.

Mailchimp refuses more than 10 simultaneous connections per API key (429). Several worker
processes share one key, so the cap must hold across processes: `RedisConcurrencyLimiter` is a
Redis sorted-set semaphore whose entries are leases (a crashed process loses its slots when the
lease runs out). `LocalConcurrencyLimiter` is the in-process variant for embedded mode.

Brevo allows 10 requests per second on `/contacts*` per account. `RedisRatePacer` spaces the
requests of every process sharing a key `1/rate` seconds apart (one Lua call reserves the next
free instant on the Redis server's clock); `LocalRatePacer` does the same inside one process.

Brevo's `/processes` counts in the account's 100 requests/hour bucket: `RedisRequestBudget`
(sliding window across processes) and `LocalRequestBudget` keep the import polls of every
worker within a share of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "ConcurrencyLimiter",
    "LimiterTimeoutError",
    "LocalConcurrencyLimiter",
    "LocalRatePacer",
    "LocalRequestBudget",
    "RatePacer",
    "RedisConcurrencyLimiter",
    "RedisRatePacer",
    "RedisRequestBudget",
    "RequestBudget",
    "concurrency_limiter",
    "hash_key",
    "rate_pacer",
    "request_budget",
    "spend",
]

log = logging.getLogger(__name__)


class LimiterTimeoutError(TimeoutError):
    """No slot became free within the limiter's `acquire_timeout_s`."""


@runtime_checkable
class ConcurrencyLimiter(Protocol):
    def slot(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold one of the key's slots for the duration of the `async with` block."""
        ...


def hash_key(key: str) -> str:
    """Stable, non-reversible name for an API key (keys are high-entropy, so no salt needed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class LocalConcurrencyLimiter:
    """At most `max_concurrent` simultaneous slots per key within this process."""

    def __init__(self, max_concurrent: int = 10) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        name = hash_key(key)
        semaphore = self._semaphores.get(name)
        if semaphore is None:
            semaphore = self._semaphores[name] = asyncio.Semaphore(self.max_concurrent)
        async with semaphore:
            yield


# KEYS[1] = the key's sorted set; ARGV = token, max, lease_ms. Scores are lease expiry times in
# Redis server milliseconds, so clocks of the client hosts never matter.
_ACQUIRE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
"""

# Extends a held lease; returns 0 if it already expired (the slot may have been taken over).
_RENEW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local updated = redis.call('ZADD', KEYS[1], 'XX', 'CH', now_ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return updated
"""


class RedisConcurrencyLimiter:
    """At most `max_concurrent` simultaneous slots per key across every process using `redis`.

    `redis` is a `redis.asyncio.Redis` client. A held slot is renewed every `lease_s / 3`
    seconds, so long requests keep it; a process that dies stops renewing and its slots free up
    after at most `lease_s`. Waiters poll with jittered backoff (at most `max_poll_s` apart).
    """

    def __init__(
        self,
        redis: Any,
        max_concurrent: int = 10,
        *,
        lease_s: float = 60.0,
        prefix: str = "connector:limit",
        acquire_timeout_s: float | None = 300.0,
        max_poll_s: float = 0.05,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self.max_concurrent = max_concurrent
        self._redis = redis
        self._lease_ms = max(1, int(lease_s * 1000))
        self._prefix = prefix
        self._acquire_timeout_s = acquire_timeout_s
        self._max_poll_s = max_poll_s
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)

    def redis_key(self, key: str) -> str:
        return f"{self._prefix}:{hash_key(key)}"

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        name = self.redis_key(key)
        token = secrets.token_hex(12)
        await self._wait_for_slot(name, token)
        renewer = asyncio.create_task(self._keep_alive(name, token))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            # Shielded: a cancelled caller must still hand its slot back. Best effort: with
            # Redis gone the request itself is done (failing it now would only make the caller
            # send it again), and the slot frees itself after its lease.
            try:
                await asyncio.shield(self._redis.zrem(name, token))
            except Exception as exc:
                log.warning("limiter.release_failed", extra={"error": f"{type(exc).__name__}"})

    async def _wait_for_slot(self, name: str, token: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = (
            None if self._acquire_timeout_s is None else loop.time() + self._acquire_timeout_s
        )
        delay = 0.002
        while not await self._acquire(
            keys=[name], args=[token, self.max_concurrent, self._lease_ms]
        ):
            if deadline is not None and loop.time() >= deadline:
                raise LimiterTimeoutError(
                    f"no request slot became free within {self._acquire_timeout_s:.0f} s"
                )
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, self._max_poll_s)

    async def _keep_alive(self, name: str, token: str) -> None:
        interval = self._lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew(keys=[name], args=[token, self._lease_ms])
            except Exception as exc:  # a Redis outage: the request goes on, renewed later
                log.warning("limiter.renew_failed", extra={"error": f"{type(exc).__name__}"})


# -------------------------------------------------------------------------------------------------
# Rate pacing (Brevo: 10 requests/s per account on /contacts)
# -------------------------------------------------------------------------------------------------


@runtime_checkable
class RatePacer(Protocol):
    rate: float

    async def wait(self, key: str) -> None:
        """Return when the key's next request may be sent (at most `rate` per second)."""
        ...


class LocalRatePacer:
    """Requests of one key at least `1/rate` seconds apart within this process, no burst."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._interval = 1.0 / rate
        self._next: dict[str, float] = {}

    async def wait(self, key: str) -> None:
        name = hash_key(key)
        now = asyncio.get_running_loop().time()
        at = max(now, self._next.get(name, now))
        self._next[name] = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)


# KEYS[1] = the key's next free instant (microseconds, Redis server clock); ARGV = interval_us.
# Returns how long the caller waits (microseconds) for the instant it reserved.
_RESERVE = """
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local at = tonumber(redis.call('GET', KEYS[1]) or '0')
if at < now_us then at = now_us end
local interval = tonumber(ARGV[1])
local ttl_ms = math.ceil((at + interval - now_us) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', at + interval), 'PX', ttl_ms)
return at - now_us
"""


class RedisRatePacer:
    """Requests of one key at least `1/rate` seconds apart across every process using `redis`.

    Each call reserves the next free instant in one atomic script and sleeps until then, so
    callers are served first come, first served and the rate holds however many workers share
    the key. Only a hash of the key is stored.
    """

    def __init__(self, redis: Any, rate: float, *, prefix: str = "connector:pace") -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._interval_us = max(1, int(1_000_000 / rate))
        self._prefix = prefix
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)

    def redis_key(self, key: str) -> str:
        return f"{self._prefix}:{hash_key(key)}"

    async def wait(self, key: str) -> None:
        delay_us = int(await self._reserve(keys=[self.redis_key(key)], args=[self._interval_us]))
        if delay_us > 0:
            await asyncio.sleep(delay_us / 1_000_000)


# -------------------------------------------------------------------------------------------------
# Hourly budgets (Brevo: /processes sits in the 100 requests/hour bucket of an account)
# -------------------------------------------------------------------------------------------------


@runtime_checkable
class RequestBudget(Protocol):
    limit: int
    window_s: float

    async def take(self, key: str) -> float:
        """Count one request of `key` if the window allows it and return 0; otherwise count
        nothing and return the seconds until a request is allowed again."""
        ...


async def spend(budget: RequestBudget, key: str, *, give_up_at: float | None = None) -> bool:
    """Wait until `budget` allows one request of `key` and count it; False (nothing counted)
    when that would be after the event-loop time `give_up_at`."""
    loop = asyncio.get_running_loop()
    while True:
        wait = await budget.take(key)
        if wait <= 0:
            return True
        if give_up_at is not None and loop.time() + wait > give_up_at:
            return False
        await asyncio.sleep(wait)


class LocalRequestBudget:
    """At most `limit` requests per key in any `window_s` seconds within this process."""

    def __init__(self, limit: int, window_s: float = 3600.0) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be at least 1 and window_s positive")
        self.limit = limit
        self.window_s = window_s
        self._sent: dict[str, list[float]] = {}

    async def take(self, key: str) -> float:
        now = asyncio.get_running_loop().time()
        sent = [at for at in self._sent.get(hash_key(key), []) if at > now - self.window_s]
        self._sent[hash_key(key)] = sent
        if len(sent) < self.limit:
            sent.append(now)
            return 0.0
        return sent[0] + self.window_s - now


# KEYS[1] = the key's sorted set of request times (ms, Redis clock); ARGV = limit, window_ms,
# token. Returns 0 when the request is counted, else the milliseconds until the oldest leaves
# the window.
_SPEND = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now_ms)
"""


class RedisRequestBudget:
    """At most `limit` requests per key in any `window_s` seconds across every process using
    `redis` (a sliding window: one sorted set of request times per hashed key, trimmed and
    counted in one atomic script on the Redis server's clock)."""

    def __init__(
        self, redis: Any, limit: int, window_s: float = 3600.0, *, prefix: str = "connector:budget"
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be at least 1 and window_s positive")
        self.limit = limit
        self.window_s = window_s
        self._redis = redis
        self._prefix = prefix
        self._spend = redis.register_script(_SPEND)

    def redis_key(self, key: str) -> str:
        return f"{self._prefix}:{hash_key(key)}"

    async def take(self, key: str) -> float:
        wait_ms = await self._spend(
            keys=[self.redis_key(key)],
            args=[self.limit, max(1, int(self.window_s * 1000)), secrets.token_hex(8)],
        )
        return int(wait_ms) / 1000


# One of each for a process: backed by Redis so an account's limit holds across all workers, or
# in-process when there is no Redis (embedded mode).


def concurrency_limiter(redis: Any | None, max_concurrent: int) -> ConcurrencyLimiter:
    if redis is None:
        return LocalConcurrencyLimiter(max_concurrent)
    return RedisConcurrencyLimiter(redis, max_concurrent)


def rate_pacer(redis: Any | None, rate: float) -> RatePacer:
    return LocalRatePacer(rate) if redis is None else RedisRatePacer(redis, rate)


def request_budget(redis: Any | None, limit: int) -> RequestBudget:
    return LocalRequestBudget(limit) if redis is None else RedisRequestBudget(redis, limit)
