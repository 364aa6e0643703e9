"""Exact counts after a resent batch: Mailchimp carried out a batch but its answer was lost
(a proxy's 504), so the batch is sent again; Mailchimp answers "updated"/"unchanged" for the
members the first request created. The run still counts them as created: whether a contact is
new to the list is decided from the list state read at the run's start."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings
from app.contacts.counts import counted_as
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.mailchimp.state import Fault
from tests.e2e.conftest import World
from tests.e2e.harness import Tenant, connect_tenant, run_full_sync, start_connector
from tests.e2e.test_webhooks import address

N = 30


@pytest.mark.parametrize(
    "provider_retries",
    [
        2,  # the Mailchimp client's own retry checks the members first
        0,  # the job fails; its retry finds the send recorded on the batch and checks first
    ],
)
async def test_a_batch_resent_after_its_answer_was_lost_counts_exactly(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient, provider_retries: int
) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, N + 1)])
    settings = e2e_settings.model_copy(update={"PROVIDER_MAX_RETRIES": provider_retries})
    connector = start_connector(settings)  # jobs in-process
    try:
        tenant = Tenant("C1", "c" * 32, "d" * 64, "claim-c")
        token, saved = await connect_tenant(
            http, connector, world.onoffice_url, tenant, "mailchimp", DEFAULT_API_KEY
        )
        list_id = saved["list_id"]
        # Two are in the list already (without their names): updated by the run, not created.
        for email in ("p1@example.de", "p2@example.de"):
            world.mailchimp.seed_member(list_id, email)
        batch_path = f"/3.0/lists/{list_id}"
        lost = Fault(status=504, method="POST", path_contains=batch_path, after=True)
        world.mailchimp.faults.append(lost)
        calls_before = world.mailchimp.request_counts.copy()
        run = await run_full_sync(http, connector, token)
    finally:
        connector.stop()
    assert run["status"] == "completed", run
    assert lost not in world.mailchimp.faults  # the answer of the first batch was lost
    batch_calls = sum(world.mailchimp.request_counts.values()) - sum(calls_before.values())
    assert batch_calls >= 2
    members = world.mailchimp.lists[list_id].members
    assert sum(m.status == "subscribed" for m in members.values()) == N
    counts = run["counts"]
    assert counts["created"] == N - 2, counts
    assert counts["updated"] == 2, counts
    assert counts["synced"] == N, counts
    # Item 4 of issue 22: the members the lost batch wrote were checked, not written again.
    assert sum(world.mailchimp.batch_writes.values()) == N, world.mailchimp.batch_writes
    assert max(world.mailchimp.batch_writes.values()) == 1


@pytest.mark.parametrize(
    ("provider_says", "listed", "counted"),
    [
        ("updated", False, "created"),  # the resend of a batch whose first try created it
        ("unchanged", False, "created"),
        ("created", False, "created"),
        ("updated", True, "updated"),
        ("unchanged", True, "unchanged"),
        ("created", True, "created"),  # deleted at the provider since the read
        ("updated", None, "updated"),  # a batch built without the list state: as answered
        ("synced_unspecified", False, "synced_unspecified"),  # the provider does not tell
    ],
)
def test_counted_as(provider_says: str, listed: bool | None, counted: str) -> None:
    assert counted_as(provider_says, listed) == counted
