"""The reconciliation's read, `changed_since`, in the contract every provider passes (same
harness as tests/providers/test_contract.py: each client against its spec-validating emulator)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from providers.base import ProviderContact
from tests.providers import test_contract as contract
from tests.providers.test_contract import Harness, Ready, people, upsert_all

# The contract's fixtures (both providers, each against its spec-validating emulator).
harness = contract.harness
ready = contract.ready
_no_spec_violations = contract._no_spec_violations


async def changed(harness: Harness, ready: Ready, since: datetime) -> dict[str, ProviderContact]:
    found = harness.provider.changed_since(ready.list_id, since)
    return {c.email: c async for c in found}


async def test_changed_since_shows_opt_outs_and_removals_but_not_the_rest(
    harness: Harness, ready: Ready
) -> None:
    provider = harness.provider
    stay, leave, removed = people(3, prefix="chg")
    await upsert_all(provider, ready, [stay, leave, removed])
    await asyncio.sleep(1.1)  # Mailchimp's last_changed is to the second
    since = datetime.now(UTC)

    await provider.set_subscription(ready.list_id, leave.email, False)
    await provider.archive_contact(ready.list_id, removed.email)
    found = await changed(harness, ready, since)

    assert stay.email not in found
    assert found[leave.email].subscribed is False
    assert found[leave.email].status in ("unsubscribed", "blacklisted")
    # Archived (Mailchimp, read by status) or no longer in the list (Brevo's account read).
    gone = found[removed.email]
    assert gone.status == "archived" or gone.in_list is False
    assert all(c.last_changed is not None and c.last_changed >= since - timedelta(seconds=1)
               for c in found.values())  # fmt: skip
    # Everything since before the writes: all three, the subscribed one with its sign-up time.
    everything = await changed(harness, ready, since - timedelta(minutes=5))
    assert set(everything) >= {stay.email, leave.email, removed.email}
    assert everything[stay.email].subscribed is True
    assert everything[stay.email].opted_in_at is not None


async def test_changed_since_costs_at_most_two_requests_when_nothing_changed(
    harness: Harness, ready: Ready
) -> None:
    await upsert_all(harness.provider, ready, people(5, prefix="idle"))
    await asyncio.sleep(1.1)
    before = harness.inspector.requests()

    found = await changed(harness, ready, datetime.now(UTC))

    assert found == {}
    assert harness.inspector.requests() - before <= 2
