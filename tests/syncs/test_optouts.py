"""The full sync's opt-out re-check: shared by the batches of a run (across workers through
Redis), asked again only when older than OPT_OUT_RECHECK_S (against the Mailchimp emulator)."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from app.config import Settings
from app.resources import Resources, create_resources
from app.syncs.optouts import recent_opt_outs
from emulators.mailchimp import MailchimpState
from providers.mailchimp import MailchimpClient
from tests.rows import mailchimp_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
READS = "GET /3.0/lists/{list_id}/members"


@pytest.fixture
def state() -> MailchimpState:
    return MailchimpState()


@pytest.fixture
async def client(state: MailchimpState) -> AsyncIterator[MailchimpClient]:
    async with mailchimp_client(state) as client:
        yield client


async def workers(settings: Settings, n: int, interval: float) -> list[Resources]:
    shared = settings.model_copy(update={"REDIS_URL": REDIS_URL, "OPT_OUT_RECHECK_S": interval})
    return [await create_resources(shared) for _ in range(n)]


def three_members(state: MailchimpState) -> str:
    list_id = state.create_list("onoffice").id
    for i in range(3):
        state.seed_member(list_id, f"m{i}@example.com")
    return list_id


async def test_one_provider_check_per_interval_shared_by_every_worker(
    settings: Settings, state: MailchimpState, client: MailchimpClient
) -> None:
    list_id = three_members(state)
    run_id = random.randrange(10**9)  # a fresh run for the shared store
    one, two = await workers(settings, 2, interval=30.0)
    try:
        now = datetime.now(UTC)
        # The run read the list just now: no batch asks the provider within the interval.
        assert await recent_opt_outs(one, run_id, now, now, client, list_id) == set()
        assert state.request_counts.get(READS, 0) == 0

        # Older than the interval: the first batch (worker one) asks, four filtered reads ...
        started = now - timedelta(seconds=60)
        state.member_action(list_id, "m1@example.com", "admin_unsubscribe")
        found = await recent_opt_outs(one, run_id, started, started, client, list_id)
        assert found == {"m1@example.com"}
        assert state.request_counts[READS] == 4
        # ... and the next batch, on the other worker, uses that answer without asking.
        state.member_action(list_id, "m2@example.com", "admin_unsubscribe")
        again = await recent_opt_outs(two, run_id, started, started, client, list_id)
        assert again == {"m1@example.com"}
        assert state.request_counts[READS] == 4
    finally:
        for resources in (one, two):
            await resources.aclose()


async def test_zero_interval_asks_before_every_batch(
    settings: Settings, state: MailchimpState, client: MailchimpClient
) -> None:
    list_id = state.create_list("onoffice").id
    state.seed_member(list_id, "m0@example.com")
    (worker,) = await workers(settings, 1, interval=0.0)
    run_id = random.randrange(10**9)
    try:
        now = datetime.now(UTC)
        for n in range(1, 3):
            assert await recent_opt_outs(worker, run_id, now, now, client, list_id) == set()
            assert state.request_counts[READS] == 4 * n
        state.member_action(list_id, "m0@example.com", "admin_unsubscribe")
        earlier = now - timedelta(seconds=5)
        assert await recent_opt_outs(worker, run_id, now, earlier, client, list_id)
    finally:
        await worker.aclose()


async def test_zero_interval_shares_only_checks_begun_after_the_batch_asked(
    settings: Settings, state: MailchimpState, client: MailchimpClient
) -> None:
    list_id = three_members(state)
    state.latency_s = 0.3  # each check is under way long enough for others to ask meanwhile
    run_id = random.randrange(10**9)
    one, two = await workers(settings, 2, interval=0.0)
    now = datetime.now(UTC)

    def ask(worker: Resources) -> asyncio.Task[set[str]]:
        return asyncio.create_task(recent_opt_outs(worker, run_id, now, now, client, list_id))

    async def reads_reach(n: int) -> None:
        for _ in range(500):
            if state.request_counts.get(READS, 0) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"fewer than {n} reads")

    try:
        first = ask(one)
        await reads_reach(4)  # its check is under way
        # Three batches ask meanwhile, on both workers: none may use the check already under
        # way (it may have read before their opt-outs), and they need not ask three times.
        state.member_action(list_id, "m1@example.com", "admin_unsubscribe")
        later = [ask(two), ask(one), ask(two)]
        assert await first == {"m1@example.com"}  # the emulator answers after its latency
        state.member_action(list_id, "m2@example.com", "admin_unsubscribe")
        answers = await asyncio.gather(*later)
        assert state.request_counts[READS] == 8  # one more check, shared by the three
        assert all(a == {"m1@example.com", "m2@example.com"} for a in answers), answers
        # Asked after every check ended: a check of its own.
        state.member_action(list_id, "m0@example.com", "admin_unsubscribe")
        assert "m0@example.com" in await ask(two)
        assert state.request_counts[READS] == 12
    finally:
        for resources in (one, two):
            await resources.aclose()
