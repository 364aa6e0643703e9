"""The process-wide shared parts: typed, made with the resources, shared by every client of the
process, and closed with the resources (app/parts.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from app.config import Settings
from app.connections.factory import provider_for_connection
from app.db.models import Connection
from app.resources import create_resources
from app.status.service import live_count
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


@respx.mock
async def test_two_apps_in_one_process_keep_their_own_status_counts(settings: Settings) -> None:
    """The status page's cached provider count lives in each app's parts, not in a module: a
    second app of the same process asks the provider itself instead of reading the first's."""
    route = respx.get(url__regex=r"https://us21\.api\.mailchimp\.com/3\.0/lists/L1/members.*")
    route.mock(return_value=httpx.Response(200, json={"total_items": 5}))
    first, second = await create_resources(settings), await create_resources(settings)
    try:
        made = datetime(2026, 1, 1, tzinfo=UTC)
        one = connection(first.secret_box, 1)
        one.list_id, one.created_at = "L1", made
        assert await live_count(first, one, "en") == (5, None)
        route.mock(return_value=httpx.Response(200, json={"total_items": 7}))
        assert await live_count(first, one, "en") == (5, None)  # cached in the first app
        other = connection(second.secret_box, 1)
        other.list_id, other.created_at = "L1", made
        assert await live_count(second, other, "en") == (7, None)
        assert route.call_count == 2
        assert first.parts.live_counts and first.parts.live_counts != second.parts.live_counts
        assert first.parts.scope_counts is not second.parts.scope_counts
        assert first.parts.scope_counting is not second.parts.scope_counting
    finally:
        await first.aclose()
        await second.aclose()
