"""Workers that outlive Redis: arq's Worker, kept polling through an outage, and supervised.

arq's poll loop ends at the first Redis error (its `main()` raises, `close()` raises again on
the way out), so a Redis restart used to end every worker process. Here:
- a failed poll is logged and tried again with a short backoff (at most POLL_BACKOFF_CAP_S), so
  the worker picks jobs again within seconds of Redis's return (redis-py reconnects the pool);
- a job slot taken for a job that could not be started is given back (arq would leak it);
- once Redis is back the sweeps run at once (a restarted Redis without persistence has lost the
  queued jobs: the sweeps find the work again from the database) and the worker records its
  health again (`connector worker --check`);
- the shutdown path never raises on a Redis that is down;
- a worker that could not start (Redis down at start) or stopped anyway is created again with
  backoff by `supervise()`, until the process is asked to stop;
- a running job is held by a short lease (`WORKER_JOB_LEASE_S`) that the worker renews while the
  job runs, instead of arq's in-progress key that lived for the whole job timeout (+10 s): a
  worker killed mid-job (`kill -9`, OOM) leaves its jobs in the queue, and another worker takes
  them as soon as the lease has expired (seconds, not 130 s). A lease that was lost (the key
  vanished with a restarted Redis) is taken again; one that another worker took meanwhile (this
  worker's event loop was blocked longer than the lease; the holder is recorded beside arq's
  key) cancels the job here, so two workers overlap on a job at most one renewal interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.worker import Worker

log = logging.getLogger(__name__)

POLL_BACKOFF_START_S = 0.1
POLL_BACKOFF_CAP_S = 2.0
RESTART_BACKOFF_CAP_S = 5.0
CLOSE_TIMEOUT_S = 3.0
DEFAULT_JOB_LEASE_S = 6.0
LEASE_HOLDER_PREFIX = "connector:lease:"  # + job id: the worker holding a running job's lease


def lease_renew_s(lease_s: float) -> float:
    """How often a running job's lease is renewed: four times per lease."""
    return max(0.05, lease_s / 4)


def backoff(failures: int, cap: float) -> float:
    return float(min(cap, POLL_BACKOFF_START_S * 2 ** max(failures - 1, 0)))


class ResilientWorker(Worker):
    """An arq Worker whose poll loop survives Redis (and any other) errors."""

    _failures: int = 0
    _down_since: float | None = None
    job_lease_s: float = DEFAULT_JOB_LEASE_S

    def __init__(self, *args: Any, job_lease_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if job_lease_s is not None:
            self.job_lease_s = job_lease_s
        # arq sets the in-progress key for the job timeout + 10 s; here it is a lease.
        self.in_progress_timeout_s = self.job_lease_s
        self.lost_leases: set[str] = set()
        self.lease_holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def main(self) -> None:
        renewer = asyncio.ensure_future(self._renew_leases())
        try:
            await super().main()
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    async def _renew_leases(self) -> None:
        """Renew the lease of every running job, every quarter lease, until the worker ends."""
        while True:
            await asyncio.sleep(lease_renew_s(self.job_lease_s))
            if self._pool is None:
                continue
            try:
                await self.renew_leases()
            except Exception as exc:  # Redis is down: the poll loop reports it
                log.debug("worker.lease_renewal_failed", extra={"error": repr(exc)})

    async def renew_leases(self) -> None:
        """Renew the lease (arq's in-progress key) of each running job, and record this worker
        as its holder beside it (arq's key only says "running"). A job whose holder is another
        worker (the lease expired while this worker's loop was blocked, and another worker
        started the job) is cancelled here; whichever worker renews second gives way, so the
        two overlap at most one renewal interval."""
        running = [job_id for job_id, t in self.tasks.items() if not t.done()]
        if not running:
            return
        ttl = int(self.job_lease_s * 1000)
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in running:
                pipe.get(LEASE_HOLDER_PREFIX + job_id)
            holders = await pipe.execute()
        mine = self.lease_holder.encode()
        kept = []
        for job_id, holder in zip(running, holders, strict=True):
            if holder is None or holder == mine:
                kept.append(job_id)
                continue
            task = self.tasks.get(job_id)
            if task is not None and not task.done():
                self.lost_leases.add(job_id)
                log.warning("worker.lease_lost", extra={"job_id": job_id})
                task.cancel()
        # Taken again after a Redis restart lost the keys (the job still runs here).
        async with self.pool.pipeline(transaction=False) as pipe:
            for job_id in kept:
                pipe.set(in_progress_key_prefix + job_id, b"1", px=ttl)
                pipe.set(LEASE_HOLDER_PREFIX + job_id, mine, px=ttl)
            await pipe.execute()

    async def finish_job(self, job_id: str, *args: Any, **kwargs: Any) -> None:
        """arq's bookkeeping at a job's end, except for a job whose lease another worker took
        (that worker owns the job's keys now); the holder record goes with the lease."""
        if job_id in self.lost_leases:
            self.lost_leases.discard(job_id)
            return
        await super().finish_job(job_id, *args, **kwargs)
        with contextlib.suppress(Exception):
            await self.pool.delete(LEASE_HOLDER_PREFIX + job_id)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as exc:
            self._failures += 1
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "worker.redis_unavailable",
                    extra={"queue": self.queue_name, "error": f"{type(exc).__name__}: {exc}"},
                )
            await asyncio.sleep(backoff(self._failures, POLL_BACKOFF_CAP_S))
            return
        if self._down_since is not None:
            log.warning(
                "worker.redis_back",
                extra={
                    "queue": self.queue_name,
                    "down_s": round(time.monotonic() - self._down_since, 1),
                },
            )
            self._failures, self._down_since = 0, None
            self._last_health_check = 0  # record it again at the next poll (`worker --check`)
            self._sweep_now()

    def _sweep_now(self) -> None:
        """Run the start-up crons (the sweeps) at the next poll, as at a worker's start."""
        for cron_job in self.cron_jobs:
            if cron_job.run_at_startup:
                cron_job.next_run = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        # arq takes a slot (semaphore, counter) before reading a job from Redis and gives it back
        # only on the paths it expects: a Redis error in between would leak it for good.
        for job_id in job_ids:
            started_before = self.tasks.get(job_id.decode())
            try:
                await super().start_jobs([job_id])
            except Exception:
                if self.tasks.get(job_id.decode()) is started_before:  # no task took the slot
                    self._release_sem_dec_counter_on_complete()
                raise
            if self.job_counter >= self.max_jobs:
                return

    async def close(self) -> None:
        """arq's close, without raising when Redis is down (the resources are closed anyway)."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)  # as arq does: cancels the running jobs and the loop
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.delete(self.health_check_key), CLOSE_TIMEOUT_S)
        if self.on_shutdown:
            try:
                await self.on_shutdown(self.ctx)
            except Exception:
                log.exception("worker.shutdown_failed")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(close_connection_pool=True), CLOSE_TIMEOUT_S)
        self._pool = None


async def supervise(create: Callable[[], Worker], stop: asyncio.Event, name: str) -> None:
    """Run workers made by `create` until `stop` is set: one that ends (it could not connect
    at start, or failed) is closed and created again after a backoff."""
    failures = 0
    while not stop.is_set():
        worker = create()
        run = asyncio.ensure_future(worker.async_run())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([run, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            await worker.close()
            run.cancel()
            outcome = (await asyncio.gather(run, return_exceptions=True))[0]
        if stop.is_set():
            return
        failures += 1
        delay = backoff(failures + 3, RESTART_BACKOFF_CAP_S)
        log.warning(
            "worker.restarting",
            extra={"queue": name, "error": repr(outcome)[:300], "retry_in_s": delay},
        )
        await asyncio.sleep(delay)
