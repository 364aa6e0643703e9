"""Embedded mode's stand-in for the arq cron: run the periodic sweeps in this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from app.resources import Resources
from app.worker.queue import InProcessQueue, enqueue_job
from app.worker.registry import HOURLY_TASKS, SWEEP_TASKS

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60.0


async def _sweep_forever(resources: Resources) -> None:
    rounds = 0
    while True:
        try:
            async with resources.transaction():
                for name in SWEEP_TASKS:
                    enqueue_job(name, _job_id=f"sweep:{name}")
                if rounds % 60 == 0:  # about hourly, and once at start
                    for name in HOURLY_TASKS:
                        enqueue_job(name, _job_id=f"sweep:{name}")
        except Exception:
            log.exception("worker.sweep_failed")
        rounds += 1
        await asyncio.sleep(SWEEP_INTERVAL_S)


@contextlib.asynccontextmanager
async def embedded_sweeper(resources: Resources) -> AsyncIterator[None]:
    if not isinstance(resources.queue, InProcessQueue) or resources.settings.ENV == "testing":
        yield
        return
    task = asyncio.create_task(_sweep_forever(resources), name="embedded-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
