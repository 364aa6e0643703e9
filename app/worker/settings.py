"""arq WorkerSettings: `connector worker` (or `arq app.worker.settings.WorkerSettings`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, cast

from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Function, func

from app.config import get_settings
from app.logging import configure_logging
from app.resources import Resources, create_resources, redis_settings
from app.worker.queue import BULK, INTERACTIVE, QUEUE_NAMES, TASKS
from app.worker.registry import (
    HOURLY_MINUTE,
    HOURLY_TASKS,
    SWEEP_TASKS,
    load_tasks,
    sweep_seconds,
)

if TYPE_CHECKING:
    from arq.typing import WorkerCoroutine


def worker_functions() -> list[Function]:
    load_tasks()
    return [
        func(
            cast("WorkerCoroutine", spec.fn),
            name=spec.name,
            max_tries=spec.max_tries,
            timeout=spec.timeout_s,
            keep_result=spec.keep_result_s,
        )
        for spec in TASKS.values()
    ]


def cron_jobs() -> list[CronJob]:
    load_tasks()
    interval = get_settings().PROVIDER_RECONCILE_INTERVAL_S
    return [
        cron(
            cast("WorkerCoroutine", TASKS[name].fn),
            name=f"cron:{name}",
            second=sweep_seconds(name, interval),
            run_at_startup=True,
            unique=True,
        )
        for name in SWEEP_TASKS
        if name in TASKS
    ] + [
        cron(
            cast("WorkerCoroutine", TASKS[name].fn),
            name=f"cron:{name}",
            minute=HOURLY_MINUTE,
            second=0,
            unique=True,
        )
        for name in HOURLY_TASKS
        if name in TASKS
    ]


async def on_startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings.LOG_LEVEL)
    resources = await create_resources(settings, redis=ctx["redis"])
    ctx.update(resources.job_context())
    # With several queues in one process only the first serves the metrics port.
    if settings.WORKER_METRICS_PORT and ctx.get("serve_metrics", True):
        from prometheus_client import start_http_server

        # The worker's own counters (contacts, runs, provider requests, webhook events).
        try:
            start_http_server(settings.WORKER_METRICS_PORT)
        except OSError as exc:
            logging.getLogger(__name__).warning(
                "worker.metrics_port_busy",
                extra={"port": settings.WORKER_METRICS_PORT, "error": str(exc)},
            )


async def on_shutdown(ctx: dict[str, Any]) -> None:
    resources: Resources | None = ctx.get("resources")
    if resources is not None:
        await resources.http.aclose()
        await resources.engine.dispose()


# A polling worker records its health in Redis this often (`connector worker --check`).
HEALTH_CHECK_INTERVAL_S = 30


def worker_redis_settings() -> RedisSettings:
    url = get_settings().REDIS_URL
    if not url:
        raise RuntimeError("the arq worker needs REDIS_URL (embedded mode runs jobs in-process)")
    return redis_settings(url)


def worker_options() -> dict[str, Any]:
    """Options `connector worker` passes to arq (from the settings)."""
    settings = get_settings()
    return {
        "redis_settings": worker_redis_settings(),
        "max_jobs": settings.WORKER_CONCURRENCY,
        "job_timeout": settings.WORKER_JOB_TIMEOUT_S,
        "max_tries": settings.WORKER_MAX_TRIES,
        "poll_delay": settings.WORKER_POLL_DELAY_S,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
    }


def resilient_options() -> dict[str, Any]:
    """Options of `ResilientWorker` beyond arq's."""
    return {"job_lease_s": get_settings().WORKER_JOB_LEASE_S}


def check_workers(queues: list[str]) -> int:
    """`connector worker --check`: 0 when a worker of each queue recorded its health in Redis
    within the last HEALTH_CHECK_INTERVAL_S (it polls), 1 otherwise (or Redis is down)."""
    from arq.worker import async_check_health

    async def check() -> int:
        for queue in queues:
            try:
                failed = await asyncio.wait_for(
                    async_check_health(worker_redis_settings(), queue_name=QUEUE_NAMES[queue]), 10
                )
            except Exception:
                return 1
            if failed:
                return 1
        return 0

    return asyncio.run(check())


def parse_queues(value: str) -> list[str]:
    """`interactive,bulk` -> the queues in that order (unknown names are refused)."""
    queues = list(dict.fromkeys(q.strip() for q in value.split(",") if q.strip()))
    unknown = [q for q in queues if q not in QUEUE_NAMES]
    if unknown or not queues:
        raise ValueError(f"unknown worker queue(s) {unknown or value!r}; use interactive, bulk")
    return queues


def lower_priority(nice: int) -> None:
    """Raise this process's nice value to `nice` (a bulk-only worker yields the CPU to the
    interactive workers and the API on the same machine)."""
    current = os.nice(0)
    if nice > current:
        os.nice(nice - current)


def run_workers(queues: list[str]) -> None:
    """Serve the given queues in this process: one arq worker per queue, each with its own
    WORKER_CONCURRENCY slots, so bulk jobs never take the slots of interactive ones. The
    periodic sweeps run on the interactive queue (or the first one served). Each worker is
    supervised (`app.worker.resilient`): Redis or PostgreSQL going away never ends the process;
    only SIGINT/SIGTERM do."""
    from arq.worker import get_kwargs

    from app.worker.resilient import ResilientWorker, supervise

    options = worker_options()
    if queues == [BULK]:
        lower_priority(get_settings().WORKER_BULK_NICE)
    cron_queue = INTERACTIVE if INTERACTIVE in queues else queues[0]

    def factory(queue: str, index: int) -> Callable[[], ResilientWorker]:
        def create() -> ResilientWorker:
            defaults: dict[str, Any] = get_kwargs(WorkerSettings)  # type: ignore[arg-type]
            return ResilientWorker(
                **{
                    **defaults,
                    "queue_name": QUEUE_NAMES[queue],
                    # Fresh cron jobs: a recreated worker runs the sweeps at its start.
                    "cron_jobs": cron_jobs() if queue == cron_queue else [],
                    "handle_signals": False,
                    "ctx": {"serve_metrics": index == 0},
                    **options,
                    **resilient_options(),
                }
            )

        return create

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await asyncio.gather(
            *(supervise(factory(queue, index), stop, queue) for index, queue in enumerate(queues))
        )

    asyncio.run(serve())


class WorkerSettings:
    functions: ClassVar[list[Function]] = worker_functions()
    cron_jobs: ClassVar[list[CronJob]] = cron_jobs()
    on_startup = on_startup
    on_shutdown = on_shutdown
    max_tries = 10
    job_timeout = 120
    max_jobs = 10
    # `connector worker` passes the configured settings; this default serves `arq app.worker...`.
    redis_settings = redis_settings(get_settings().REDIS_URL or "redis://127.0.0.1:6379/0")
