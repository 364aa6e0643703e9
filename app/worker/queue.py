"""Background jobs: enqueue after commit, run on arq (Redis) or in-process (embedded mode).

`enqueue_job()` never touches Redis. It appends to a per-request (or per-task) buffer that the
transaction owner flushes only after its commit, and throws away on rollback, so a job can never
run against rows that do not exist (anti-pattern 1 of the style guide).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from arq import ArqRedis
from arq.jobs import Job
from arq.worker import Retry

from app.metrics import JOBS
from app.worker.faults import retry_on_fault

log = logging.getLogger(__name__)

TaskFn = Callable[..., Awaitable[Any]]


class Queue(StrEnum):
    """arq queues. Interactive work (webhook drains, incremental pushes and polls, the sweeps)
    never waits behind bulk work (the jobs of full syncs): each queue has its own worker slots.
    A task declares its queue (`@task(name, queue=Queue.bulk)`); interactive by default."""

    interactive = "interactive"
    bulk = "bulk"


INTERACTIVE = Queue.interactive
BULK = Queue.bulk
QUEUE_NAMES: dict[str, str] = {Queue.interactive: "arq:queue", Queue.bulk: "arq:queue:bulk"}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    fn: TaskFn
    queue: Queue = Queue.interactive
    max_tries: int | None = None
    timeout_s: float | None = None
    keep_result_s: float | None = None


TASKS: dict[str, TaskSpec] = {}


@dataclass(frozen=True)
class PendingJob:
    name: str
    kwargs: dict[str, Any]
    job_id: str | None = None
    defer_by: float | None = None


_buffer: ContextVar[list[PendingJob] | None] = ContextVar("job_buffer", default=None)


def enqueue_job(
    name: str, *, _job_id: str | None = None, _defer_by: float | None = None, **kwargs: Any
) -> None:
    """Buffer a job; it is sent when the surrounding transaction owner flushes."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}")
    buf = _buffer.get()
    if buf is None:
        raise RuntimeError("enqueue_job() called outside a job buffer (no transaction owner)")
    buf.append(PendingJob(name, kwargs, _job_id, _defer_by))


def buffered(name: str, job_id_prefix: str) -> bool:
    """Whether the surrounding job buffer already holds a `name` job whose id starts with
    `job_id_prefix` (sent together after the same commit)."""
    buf = _buffer.get() or []
    return any(job.name == name and (job.job_id or "").startswith(job_id_prefix) for job in buf)


@contextlib.contextmanager
def job_buffer() -> Any:
    """Collect jobs enqueued inside the block; the caller flushes them after commit."""
    buf: list[PendingJob] = []
    token = _buffer.set(buf)
    try:
        yield buf
    finally:
        _buffer.reset(token)


class JobQueue(Protocol):
    async def enqueue(self, job: PendingJob) -> bool:
        """Send one job; False when a job with the same id is already queued or running."""
        ...

    async def ping(self) -> None: ...

    async def depth(self) -> tuple[str, int]:
        """The queue's metric label and how many jobs wait in it (the metrics' gauge)."""
        ...

    async def aclose(self) -> None: ...


async def flush_jobs(queue: JobQueue, jobs: list[PendingJob]) -> None:
    for job in jobs:
        sent = await queue.enqueue(job)
        log.info("worker.job_enqueued", extra={"job": job.name, "job_id": job.job_id, "sent": sent})
    jobs.clear()


def compute_backoff(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter (avoid a thundering herd of retries)."""
    return random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))


class ArqQueue:
    def __init__(self, redis: ArqRedis) -> None:
        self.redis = redis

    async def enqueue(self, job: PendingJob) -> bool:
        result: Job | None = await self.redis.enqueue_job(
            job.name,
            _job_id=job.job_id,
            _defer_by=job.defer_by,
            _queue_name=QUEUE_NAMES[TASKS[job.name].queue],
            **job.kwargs,
        )
        return result is not None

    async def ping(self) -> None:
        await self.redis.ping()

    async def depth(self) -> tuple[str, int]:
        return "arq", int(await self.redis.zcard(QUEUE_NAMES[Queue.interactive]))

    async def aclose(self) -> None:
        await self.redis.aclose()


@dataclass
class InProcessQueue:
    """Embedded mode: runs tasks as asyncio tasks in this process, with arq's retry semantics.

    Jobs live only in memory; work that must survive a restart is persisted in the database
    and picked up again by the periodic sweeps (`SWEEP_TASKS` in app/worker/registry.py, run by
    app/worker/sweeper.py in embedded mode).
    """

    context_factory: Callable[[], dict[str, Any]]
    default_max_tries: int = 5
    _running: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _counter: int = 0

    async def enqueue(self, job: PendingJob) -> bool:
        spec = TASKS[job.name]
        if job.job_id is None:
            self._counter += 1
            job_id = f"{job.name}:{self._counter}"
        else:
            job_id = job.job_id
        if job_id in self._running:
            return False
        task = asyncio.create_task(self._run(spec, job, job_id), name=job_id)
        self._running[job_id] = task
        task.add_done_callback(lambda _t: self._running.pop(job_id, None))
        return True

    async def _run(self, spec: TaskSpec, job: PendingJob, job_id: str) -> None:
        if job.defer_by:
            await asyncio.sleep(job.defer_by)
        max_tries = spec.max_tries or self.default_max_tries
        for attempt in range(1, max_tries + 1):
            ctx = self.context_factory() | {"job_id": job_id, "job_try": attempt}
            try:
                await spec.fn(ctx, **job.kwargs)
                return
            except Retry as exc:
                delay = (exc.defer_score or 0) / 1000
                log.info(
                    "worker.retry", extra={"job_id": job_id, "attempt": attempt, "delay": delay}
                )
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker.job_failed", extra={"job_id": job_id, "attempt": attempt})
                return
        log.error("worker.job_gave_up", extra={"job_id": job_id, "tries": max_tries})

    async def ping(self) -> None:
        return None

    async def depth(self) -> tuple[str, int]:
        return "in_process", len(self._running)

    async def join(self) -> None:
        """Wait until every queued job (and the jobs they enqueue) has finished."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)


@contextlib.asynccontextmanager
async def task_scope(queue: JobQueue) -> AsyncIterator[None]:
    """Owner scope for a task body: jobs it enqueues are flushed only if it succeeds."""
    with job_buffer() as buf:
        yield
    await flush_jobs(queue, buf)


def task(
    name: str,
    *,
    queue: Queue = Queue.interactive,
    max_tries: int | None = None,
    timeout_s: float | None = None,
    keep_result_s: float | None = None,
) -> Callable[[TaskFn], TaskFn]:
    """Register a job function `async def fn(ctx, **ids)` under a dotted name, on its queue."""

    def decorator(fn: TaskFn) -> TaskFn:
        async def wrapper(ctx: dict[str, Any], **kwargs: Any) -> Any:
            outcome = "failed"
            try:
                async with task_scope(ctx["queue"]):
                    result = await fn(ctx, **kwargs)
                outcome = "ok"
                return result
            except Retry:
                outcome = "retry"
                raise
            except Exception as exc:
                # A lost database or Redis connection: tried again in seconds.
                tries = max_tries or ctx["settings"].WORKER_MAX_TRIES
                try:
                    retry_on_fault(exc, job_try=int(ctx.get("job_try") or 1), max_tries=tries)
                except Retry:
                    outcome = "retry"
                    raise
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            finally:
                JOBS.labels(name, outcome).inc()

        wrapper.__name__ = fn.__name__
        wrapper.__qualname__ = fn.__qualname__
        TASKS[name] = TaskSpec(name, wrapper, queue, max_tries, timeout_s, keep_result_s)
        return fn

    return decorator
