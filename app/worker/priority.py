"""Interactive work first: the full sync's page and batch steps give way while interactive jobs
(webhook drains, polls, pushes: other tenants' latency) queue up.

A worker's nice level (`WORKER_BULK_NICE`) lowers only the full sync's Python process; the
database, Redis and the services it talks to serve its requests at full priority, so a big
customer's full sync still slowed every small customer's webhooks and polls (the many-tenants
benchmark). Before each onOffice page it classifies and each batch it sends, a full-sync step
therefore waits while more than `BULK_GIVE_WAY_DEPTH` interactive jobs are due, for at most
`BULK_GIVE_WAY_S` (a full sync always advances: one step per that many seconds at least).
Embedded mode (no Redis) has no queue to look at and never waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.exceptions import RedisError

from app.worker.queue import QUEUE_NAMES, Queue

log = logging.getLogger(__name__)

GIVE_WAY_POLL_S = 0.1


async def interactive_due(redis: Any) -> int:
    """How many interactive jobs are due (queued or running) now or within a second; jobs
    deferred further (a retry later) are not counted."""
    soon_ms = int(time.time() * 1000) + 1000
    return int(await redis.zcount(QUEUE_NAMES[Queue.interactive], "-inf", soon_ms))


async def give_way(resources: Any) -> float:
    """Wait while the interactive queue is busy (see the module); the seconds waited. A Redis
    that does not answer never holds a full sync up."""
    settings = resources.settings
    redis = resources.redis
    if redis is None or settings.BULK_GIVE_WAY_S <= 0:
        return 0.0
    start = time.monotonic()
    deadline = start + settings.BULK_GIVE_WAY_S
    waited = 0.0
    while True:
        try:
            due = await interactive_due(redis)
        except (RedisError, OSError):
            return waited
        now = time.monotonic()
        if due <= settings.BULK_GIVE_WAY_DEPTH or now >= deadline:
            if waited:
                log.debug("bulk.gave_way", extra={"waited_s": round(waited, 3), "due": due})
            return waited
        await asyncio.sleep(min(GIVE_WAY_POLL_S, deadline - now))
        waited = time.monotonic() - start
