"""The process-wide shared parts: typed, made with the resources, shared by every client of the
process, and closed with the resources (app/parts.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.config import Settings
from app.connections.factory import provider_for_connection
from app.db.models import Connection
from app.resources import create_resources
from app.syncs.optout_store import LocalOptOuts, RedisOptOuts
from app.webhooks import service as webhook_service
from providers.limits import LocalConcurrencyLimiter, RedisConcurrencyLimiter

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"


def connection(box: Any, id_: int) -> Connection:
    return Connection(
        id=id_,
        tenant_id=1,
        provider="mailchimp",
        api_key_encrypted=box.encrypt(MAILCHIMP_KEY),
        webhook_token="t",
    )


async def test_every_client_of_the_process_runs_on_the_same_parts(settings: Settings) -> None:
    resources = await create_resources(settings)
    try:
        parts = resources.parts
        first = provider_for_connection(resources, connection(resources.secret_box, 1))
        second = provider_for_connection(resources, connection(resources.secret_box, 2))
        assert first is not second
        for client in (first, second):
            assert client._limiter is parts.limiter  # type: ignore[attr-defined]
            assert client._tags._segments is parts.segment_cache  # type: ignore[attr-defined]
        # Embedded mode: the parts live in the process.
        assert isinstance(parts.limiter, LocalConcurrencyLimiter)
        assert isinstance(parts.opt_outs, LocalOptOuts)
        with pytest.raises(dataclasses.FrozenInstanceError):
            parts.limiter = parts.limiter  # type: ignore[misc]
    finally:
        await resources.aclose()


async def test_with_redis_the_parts_are_shared_across_processes(
    settings: Settings, redis: Any
) -> None:
    resources = await create_resources(
        settings.model_copy(update={"REDIS_URL": "redis://unused"}), redis=redis
    )
    try:
        assert isinstance(resources.parts.limiter, RedisConcurrencyLimiter)
        assert isinstance(resources.parts.opt_outs, RedisOptOuts)
    finally:
        await resources.aclose()


async def test_the_webhook_writer_is_one_per_process_and_closing_forgets_the_clients(
    settings: Settings,
) -> None:
    resources = await create_resources(settings)
    writer = webhook_service.writer(resources)
    assert webhook_service.writer(resources) is writer
    assert resources.parts.webhook_writer.value is writer
    provider_for_connection(resources, connection(resources.secret_box, 1))
    assert len(resources.parts.provider_clients) == 1
    await resources.aclose()
    assert resources.http.is_closed
    assert not resources.parts.provider_clients  # the cached clients are forgotten
