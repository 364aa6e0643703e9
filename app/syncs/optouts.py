"""The full sync's re-check of opt-outs at the provider, at most once per OPT_OUT_RECHECK_S.

Mailchimp's batch subscribe sets the status of existing members, so a member who opted out
(or went to pending, or was archived) after the run read the list would be subscribed again by
the batch if the webhook telling us is late or lost. Before a batch is sent, the run therefore
asks the provider for opt-outs since the run started (`recent_opt_outs`). Asking before every
batch cost four reads per 500 contacts; now the answer is shared by every batch of the run (in
Redis, so across workers; in-process in embedded mode) and asked again only when the last
answer is older than `OPT_OUT_RECHECK_S` (counted from the list read at the start of the run).
What remains open: an opt-out whose webhook is lost and that happens less than that interval
(plus one request) before its batch is sent. `OPT_OUT_RECHECK_S = 0` asks before every batch.
Opt-out webhooks received meanwhile are honoured by every batch regardless (database check).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from app.resources import Resources
from providers.base import NewsletterProvider

PREFIX = "connector:optouts"
KEEP_S = 24 * 3600  # the shared answer outlives any run


async def recent_opt_outs(
    resources: Resources,
    run_id: int,
    started_at: datetime,
    since: datetime,
    provider: NewsletterProvider,
    list_id: str,
) -> set[str]:
    """Emails that opted out at the provider since `since` as far as the run knows, asking the
    provider when the last answer (or the run's start) is older than OPT_OUT_RECHECK_S."""
    interval = resources.settings.OPT_OUT_RECHECK_S
    if interval <= 0:
        return await provider.recent_opt_outs(list_id, since)
    store = _store(resources)
    if time.time() - started_at.timestamp() >= interval and await store.claim(run_id, interval):
        try:
            found = await provider.recent_opt_outs(list_id, since)
        except BaseException:
            await store.release(run_id)  # the next batch asks again
            raise
        await store.add(run_id, found)
        return found | await store.emails(run_id)
    return await store.emails(run_id)


def _store(resources: Resources) -> _RedisStore | _LocalStore:
    if resources.redis is not None:
        return _RedisStore(resources.redis)
    found: Any = resources.extra.get("opt_out_rechecks")
    if found is None:
        found = resources.extra["opt_out_rechecks"] = _LocalStore()
    return found  # type: ignore[no-any-return]


class _RedisStore:
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


class _LocalStore:
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
