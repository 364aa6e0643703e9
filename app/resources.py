"""Process-wide resources, created once (API lifespan or worker startup) and shared."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
from arq.connections import ArqRedis, RedisSettings
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.crypto import KeyPurpose, SecretBox
from app.db.engine import create_engine, create_sessionmaker
from app.db.session import unit_of_work
from app.metrics import upstream_hooks
from app.parts import SharedParts, build_parts
from app.worker.queue import ArqQueue, InProcessQueue, JobQueue


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    http: httpx.AsyncClient
    secret_box: SecretBox
    queue: JobQueue
    # Session tokens use their own derived key (never the one of data at rest).
    session_box: SecretBox
    # The process-wide parts (limiters, pacer, budget, caches, notices; app/parts.py).
    parts: SharedParts
    redis: ArqRedis | None = None

    def job_context(self) -> dict[str, Any]:
        """The `ctx` a job function receives (the same keys under arq and in-process)."""
        return {
            "settings": self.settings,
            "sessionmaker": self.sessionmaker,
            "http": self.http,
            "secret_box": self.secret_box,
            "queue": self.queue,
            "redis": self.redis,
            "resources": self,
        }

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A unit of work on these resources: commit, then send the jobs enqueued inside."""
        return unit_of_work(self.sessionmaker, self.queue)

    async def aclose(self) -> None:
        await self.parts.aclose()
        await self.queue.aclose()
        await self.http.aclose()
        await self.engine.dispose()


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.HTTP_TIMEOUT_S, connect=10.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "newsletter-connector/0.1"},
        event_hooks=upstream_hooks(settings),
    )


async def create_resources(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    redis: ArqRedis | None = None,
) -> Resources:
    from app.worker.registry import load_tasks

    load_tasks()  # the jobs these resources will run and enqueue
    engine = create_engine(settings.DATABASE_URL, pool_pre_ping=settings.DATABASE_POOL_PRE_PING)
    holder: list[Resources] = []
    queue: JobQueue
    if settings.REDIS_URL:
        # No connection is made here: the service starts (and /readyz reports) with Redis down.
        redis = redis or ArqRedis.from_url(settings.REDIS_URL)
        queue = ArqQueue(redis)
    else:
        queue = InProcessQueue(
            context_factory=lambda: holder[0].job_context(),
            default_max_tries=settings.WORKER_MAX_TRIES,
        )
    resources = Resources(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        http=http or create_http_client(settings),
        secret_box=SecretBox.from_settings(settings),
        queue=queue,
        session_box=SecretBox.from_settings(settings, KeyPurpose.session),
        parts=build_parts(redis if settings.REDIS_URL else None),
        redis=redis if settings.REDIS_URL else None,
    )
    holder.append(resources)
    return resources
