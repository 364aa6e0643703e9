"""Mutual exclusion between jobs: a Redis lock with arq, an asyncio lock in embedded mode."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.exceptions import LockError

from app.resources import Resources


@contextlib.asynccontextmanager
async def exclusive(resources: Resources, name: str) -> AsyncIterator[bool]:
    """Yields whether this caller holds `name`; never waits (the caller retries later)."""
    if resources.redis is not None:
        lock = resources.redis.lock(
            f"connector:lock:{name}", timeout=resources.settings.WORKER_JOB_TIMEOUT_S + 10
        )
        acquired = bool(await lock.acquire(blocking=False))
        try:
            yield acquired
        finally:
            if acquired:
                with contextlib.suppress(LockError):
                    await lock.release()
        return
    local = resources.parts.locks.setdefault(name, asyncio.Lock())
    if local.locked():
        yield False
        return
    async with local:
        yield True
