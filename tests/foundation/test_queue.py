"""Jobs are sent only after the transaction commits, and run in a real arq worker on Redis."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.worker import Worker
from sqlalchemy import func, select

from app.config import Settings
from app.db.models import Tenant
from app.db.session import unit_of_work
from app.resources import create_resources
from app.worker.queue import enqueue_job, task
from app.worker.settings import worker_functions

RUNS_KEY = "test:foundation:runs"


@task("test.record_tenant")
async def record_tenant(ctx: dict[str, Any], *, tenant_id: int) -> None:
    """Proves the job sees the committed row and counts its executions."""
    async with ctx["sessionmaker"]() as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None, "job ran before its row was committed"
    redis: ArqRedis = ctx["redis"]
    await redis.rpush(RUNS_KEY, str(tenant_id))


def make_worker(redis: ArqRedis, settings: Settings) -> Worker:
    from app.worker.settings import on_shutdown, on_startup

    return Worker(
        functions=worker_functions(),
        redis_pool=redis,
        burst=True,
        poll_delay=0.05,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        handle_signals=False,
    )


@pytest.fixture
def arq_settings(settings: Settings, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # The worker's on_startup reads settings from the environment, like production.
    monkeypatch.setenv("DATABASE_URL", settings.DATABASE_URL)
    monkeypatch.setenv("REDIS_URL", redis_url)
    from app.config import get_settings

    get_settings.cache_clear()
    yield settings.model_copy(update={"REDIS_URL": redis_url})
    get_settings.cache_clear()


class TestEnqueueAfterCommit:
    async def test_rolled_back_job_never_runs(
        self, arq_settings: Settings, redis: ArqRedis
    ) -> None:
        resources = await create_resources(arq_settings, redis=redis)
        with pytest.raises(RuntimeError, match="boom"):
            async with unit_of_work(resources.sessionmaker, resources.queue) as session:
                tenant = Tenant(customer_web_id="rollback")
                session.add(tenant)
                await session.flush()
                enqueue_job("test.record_tenant", tenant_id=tenant.id)
                raise RuntimeError("boom")
        assert await redis.zcard("arq:queue") == 0
        worker = make_worker(redis, arq_settings)
        await worker.main()
        await worker.close()
        assert await redis.lrange(RUNS_KEY, 0, -1) == []
        async with resources.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Tenant)) == 0
        await resources.engine.dispose()
        await resources.http.aclose()

    async def test_committed_job_runs_once_in_arq_worker(
        self, arq_settings: Settings, redis: ArqRedis
    ) -> None:
        resources = await create_resources(arq_settings, redis=redis)
        async with unit_of_work(resources.sessionmaker, resources.queue) as session:
            tenant = Tenant(customer_web_id="commit")
            session.add(tenant)
            await session.flush()
            enqueue_job("test.record_tenant", _job_id=f"rec:{tenant.id}", tenant_id=tenant.id)
            # Same job id again: arq must treat it as already queued.
            enqueue_job("test.record_tenant", _job_id=f"rec:{tenant.id}", tenant_id=tenant.id)
            # Nothing reaches Redis before the commit.
            assert await redis.zcard("arq:queue") == 0
        assert await redis.zcard("arq:queue") == 1
        worker = make_worker(redis, arq_settings)
        await worker.main()
        await worker.close()
        assert worker.jobs_complete == 1 and worker.jobs_failed == 0
        assert await redis.lrange(RUNS_KEY, 0, -1) == [str(tenant.id).encode()]
        await resources.engine.dispose()
        await resources.http.aclose()

    async def test_enqueue_outside_a_transaction_is_refused(self) -> None:
        with pytest.raises(RuntimeError, match="outside a job buffer"):
            enqueue_job("test.record_tenant", tenant_id=1)


class TestInProcessQueue:
    async def test_embedded_mode_runs_jobs_after_commit(self, settings: Settings) -> None:
        ran: list[int] = []

        @task("test.inprocess")
        async def inprocess(ctx: dict[str, Any], *, n: int) -> None:
            assert ctx["job_try"] >= 1
            ran.append(n)

        resources = await create_resources(settings)
        with pytest.raises(ValueError):
            async with unit_of_work(resources.sessionmaker, resources.queue):
                enqueue_job("test.inprocess", n=1)
                raise ValueError
        async with unit_of_work(resources.sessionmaker, resources.queue):
            enqueue_job("test.inprocess", n=2)
            assert ran == []
        await resources.queue.join()  # type: ignore[attr-defined]
        assert ran == [2]
        await resources.aclose()

    async def test_the_jobs_metric_counts_each_run_by_outcome(self, settings: Settings) -> None:
        """`connector_jobs_total` counts every run of a job: finished, retried, failed."""
        from prometheus_client import REGISTRY

        from app.worker.context import retry_later

        tries: list[int] = []

        @task("test.counted", max_tries=3)
        async def counted(ctx: dict[str, Any], *, fail: bool) -> None:
            tries.append(ctx["job_try"])
            if fail:
                raise ValueError("refused")
            if ctx["job_try"] == 1:
                retry_later(0.01)

        def count(outcome: str) -> float:
            labels = {"job": "test.counted", "outcome": outcome}
            return REGISTRY.get_sample_value("connector_jobs_total", labels) or 0.0

        before = {outcome: count(outcome) for outcome in ("ok", "retry", "failed")}
        resources = await create_resources(settings)
        try:
            async with unit_of_work(resources.sessionmaker, resources.queue):
                enqueue_job("test.counted", fail=False)
                enqueue_job("test.counted", fail=True)
            await resources.queue.join()  # type: ignore[attr-defined]
        finally:
            await resources.aclose()
        assert sorted(tries) == [1, 1, 2]
        assert count("ok") - before["ok"] == 1
        assert count("retry") - before["retry"] == 1
        assert count("failed") - before["failed"] == 1


class TestSeparateQueues:
    async def test_full_sync_jobs_wait_on_the_bulk_queue_not_in_front_of_webhooks(
        self, arq_settings: Settings, redis: ArqRedis
    ) -> None:
        from app.worker.queue import QUEUE_NAMES, PendingJob
        from app.worker.settings import parse_queues

        resources = await create_resources(arq_settings, redis=redis)
        try:
            await resources.queue.enqueue(PendingJob("sync.read", {"run_id": 1}, job_id="bulk-1"))
            await resources.queue.enqueue(
                PendingJob("webhooks.apply", {"connection_id": 1}, job_id="hook-1")
            )
            assert await redis.zrange(QUEUE_NAMES["bulk"], 0, -1) == [b"bulk-1"]
            assert await redis.zrange(QUEUE_NAMES["interactive"], 0, -1) == [b"hook-1"]
            # A worker of the interactive queue runs the webhook drain; the bulk job waits for
            # the bulk queue's own slots.
            worker = make_worker(redis, arq_settings)
            await worker.main()
            await worker.close()
            assert worker.jobs_complete == 1
            assert await redis.zrange(QUEUE_NAMES["bulk"], 0, -1) == [b"bulk-1"]
        finally:
            await resources.aclose()
        assert parse_queues(" bulk, interactive ,bulk") == ["bulk", "interactive"]
        with pytest.raises(ValueError):
            parse_queues("interactive,fast")

    async def test_a_task_runs_on_the_queue_it_declares_whatever_its_name(
        self, arq_settings: Settings, redis: ArqRedis
    ) -> None:
        """The queue is declared on the task (`@task(name, queue=...)`), not guessed from the
        name: a `sync.` name declared interactive is interactive, and the reverse."""
        from app.worker.queue import QUEUE_NAMES, TASKS, PendingJob, Queue

        task("sync.test_declared_interactive")(record_tenant)
        task("test.declared_bulk", queue=Queue.bulk)(record_tenant)
        assert TASKS["sync.read"].queue == Queue.bulk
        assert TASKS["sync.resume"].queue == Queue.interactive
        resources = await create_resources(arq_settings, redis=redis)
        try:
            for name, job_id in (
                ("sync.test_declared_interactive", "quick-1"),
                ("test.declared_bulk", "slow-1"),
            ):
                await resources.queue.enqueue(PendingJob(name, {"tenant_id": 1}, job_id=job_id))
            assert await redis.zrange(QUEUE_NAMES[Queue.bulk], 0, -1) == [b"slow-1"]
            assert await redis.zrange(QUEUE_NAMES[Queue.interactive], 0, -1) == [b"quick-1"]
        finally:
            await redis.delete(*QUEUE_NAMES.values())
            TASKS.pop("sync.test_declared_interactive")
            TASKS.pop("test.declared_bulk")
            await resources.aclose()


class TestWorkerOptions:
    def test_workers_poll_redis_at_the_configured_delay(
        self, arq_settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.config import get_settings
        from app.worker.settings import worker_options

        monkeypatch.setenv("WORKER_POLL_DELAY_S", "0.02")
        get_settings.cache_clear()
        assert worker_options()["poll_delay"] == 0.02

    def test_a_bulk_only_worker_lowers_its_cpu_priority(self) -> None:
        # In a child process: the test process keeps its priority.
        code = (
            "import os; from app.worker.settings import lower_priority; "
            "start = os.nice(0); lower_priority(start + 3); lower_priority(start + 1); "
            "print(os.nice(0) - start)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "3"  # raised once, never lowered again
