"""Whether an unfinished full sync still has a job in Redis, so `sync.resume` can pick up a
run whose jobs were lost (a Redis restarted without persistence) within seconds instead of
waiting out the staleness window (`WORKER_JOB_TIMEOUT_S` + 30 s).

Every job of a run carries the run id in its job id (`app.syncs.jobs`: `sync.read:<run>:…`,
`sync.upsert:<run>:<batch>`, `sync.finalize:<run>`, …). arq keeps a job in its queue (a sorted
set) from enqueue until it has finished, deferred retries included, and a running job holds
its in-progress key (a lease the worker renews, re-created after a Redis restart). A run is
*busy* while any of its jobs is in the bulk queue or holds a lease. A run that is not busy, made
no progress for `QUICK_IDLE_S`, and is seen idle again `IDLE_CONFIRM_S` later (longer than a
lease renewal, so a job still running on a live worker has re-created its lease by then) has
lost its jobs: the sweep enqueues its next steps. Two workers never run one step at once: the
job ids are deterministic and a step still held by a lease is not started elsewhere.
"""

from __future__ import annotations

import re
import time
from typing import Any

from arq.constants import in_progress_key_prefix

from app.worker.queue import BULK, QUEUE_NAMES

RUN_JOB = re.compile(r"^sync\.[a-z_]+:(\d+)(?::|$)")
QUICK_IDLE_S = 2.0  # no progress for this long (more than the gap from a commit to its enqueue)
IDLE_CONFIRM_S = 3.0  # seen idle twice this far apart (> a lease renewal)
MARKER = "connector:sync:idle:"
MARKER_TTL_MS = 120_000


def run_of(job_id: str) -> int | None:
    found = RUN_JOB.match(job_id)
    return int(found.group(1)) if found else None


async def busy_runs(redis: Any) -> set[int]:
    """The runs with a job queued, deferred or running (leased) in Redis."""
    runs: set[int] = set()
    for raw in await redis.zrange(QUEUE_NAMES[BULK], 0, -1):
        run = run_of(raw.decode() if isinstance(raw, bytes) else str(raw))
        if run is not None:
            runs.add(run)
    async for key in redis.scan_iter(match=f"{in_progress_key_prefix}sync.*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        run = run_of(name[len(in_progress_key_prefix) :])
        if run is not None:
            runs.add(run)
    return runs


class IdleRuns:
    """One sweep's view: which runs are busy, and the idle markers of earlier sweeps."""

    def __init__(self, redis: Any, busy: set[int]) -> None:
        self._redis = redis
        self._busy = busy

    @classmethod
    async def load(cls, redis: Any) -> IdleRuns:
        return cls(redis, await busy_runs(redis))

    async def lost_its_jobs(self, run_id: int, idle_s: float) -> bool:
        """True when the run has no job in Redis, made no progress for QUICK_IDLE_S and an
        earlier sweep at least IDLE_CONFIRM_S ago saw it idle too."""
        key = f"{MARKER}{run_id}"
        if run_id in self._busy or idle_s < QUICK_IDLE_S:
            await self._redis.delete(key)
            return False
        now = time.time()
        if await self._redis.set(key, repr(now), nx=True, px=MARKER_TTL_MS):
            return False  # first seen idle now
        seen = await self._redis.get(key)
        try:
            first = float(seen.decode() if isinstance(seen, bytes) else seen)
        except (TypeError, ValueError):
            first = now
        if now - first < IDLE_CONFIRM_S:
            return False
        await self._redis.delete(key)
        return True
