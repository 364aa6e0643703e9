"""A burst of a few hundred Mailchimp unsubscribes (senders that retry until acknowledged, as
Mailchimp does) on two real `connector worker` processes while Redis (without persistence) or
PostgreSQL restarts: every acknowledged unsubscribe reaches onOffice within seconds of the
dependency's return, each once, nobody is subscribed again at Mailchimp, and no process
exits. The webhook half of the small `bench/chaos.py` (issue 22)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import pytest

from devkit.kit import deliver_until_acked
from tests.e2e.test_webhooks import (
    activities,
    at_mailchimp,
    eventually,
    mailchimp_form,
    newsletter,
)
from tests.reliability.conftest import (
    FAULT_ADDRESSES,
    Stack,
    ThrowawayPostgres,
    ThrowawayRedis,
)

N = FAULT_ADDRESSES
RECOVERY_S = 20.0


def applied(stack: Stack) -> int:
    return sum(newsletter(stack.world, i) == "0" for i in range(1, N + 1))


@pytest.mark.parametrize("fault", ["redis", "postgres"])
async def test_a_burst_of_unsubscribes_is_applied_within_seconds_of_a_dependency_restart(
    stack: Stack,
    throwaway_redis: ThrowawayRedis,
    throwaway_postgres: ThrowawayPostgres,
    fault: str,
) -> None:
    stack.start_worker()
    stack.start_worker()
    run = await stack.wait_run(await stack.start_sync())
    assert run["status"] == "completed" and run["counts"]["synced"] == N, run
    await asyncio.sleep(5.5)  # past the consent rule's tie after the sync's writes
    emails = [f"p{i}@example.de" for i in range(1, N + 1)]
    for email in emails:
        at_mailchimp(stack.world, stack.list_id, email, "unsubscribe")
    (hook,) = stack.world.mailchimp.lists[stack.list_id].webhooks.values()
    forms = [
        mailchimp_form("unsubscribe", e, action="unsub", reason="manual", list_id=stack.list_id)
        for e in emails
    ]
    bodies = [urlencode(form).encode() for form in forms]
    sending = asyncio.ensure_future(deliver_until_acked(hook["url"], bodies, 10, 120))
    await eventually(lambda: applied(stack) >= N // 10, "the burst being applied", 60)
    if fault == "redis":
        throwaway_redis.kill()
        await asyncio.sleep(1.5)
        throwaway_redis.start()
    else:
        throwaway_postgres.stop()
        await asyncio.sleep(1.5)
        throwaway_postgres.start()
    back = time.monotonic()
    while applied(stack) < N:
        assert time.monotonic() - back < RECOVERY_S, f"{applied(stack)} of {N} applied"
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - back
    assert await sending == N
    await asyncio.sleep(1.0)  # a late repeat would show now
    twice = [i for i in range(1, N + 1) if len(activities(stack.world, i)) > 1]
    assert twice == []
    members = stack.world.mailchimp.lists[stack.list_id].members.values()
    assert sum(m.status == "unsubscribed" for m in members) == N
    assert stack.exited() == []
    print(f"{fault} restart during a burst: all {N} applied {elapsed:.1f} s after its return")
