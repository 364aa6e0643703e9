"""Honest numbers over HTTP against the emulators (issue 20, item 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.consent.conftest import Scene
from tests.e2e.conftest import World
from tests.e2e.test_webhooks import address

Make = Callable[..., Any]


def seed(world: World, n: int, **kw: Any) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de", **kw) for i in range(1, n + 1)])


async def test_a_clean_run_is_proven_and_shows_every_category(world: World, scenes: Make) -> None:
    seed(world, 4)
    scene: Scene = await scenes("mailchimp")
    run = await scene.sync()
    counts = run["counts"]
    assert counts["reconciled"] is True and counts["reconciled_code"] is None, counts
    assert counts["onoffice_reported_total"] == 4 and counts["onoffice_newsletter_total"] == 4
    for category in ("opted_out", "pending_optin", "bounced", "archived", "held_unsubscribes"):
        assert counts[category] == 0, category
    assert counts["provider_subscribed"] == 4 and counts["drift"] == 0


async def test_held_unsubscribes_are_not_reconciled(world: World, scenes: Make) -> None:
    seed(world, 40)
    scene: Scene = await scenes("mailchimp")
    world.onoffice.seed([])  # onOffice answers with no newsletter addresses at all
    run = await scene.sync()
    counts = run["counts"]
    assert counts["held_unsubscribes"] == 40
    # Before issue 20 this was true: the (empty) sum added up and the drift was 0.
    assert counts["reconciled"] is False and counts["reconciled_code"] == "held", counts
    assert "40" in counts["reconciled_reason"]


async def test_status_counts_subscribed_contacts_only(world: World, scenes: Make) -> None:
    seed(world, 3)
    scene: Scene = await scenes("mailchimp")
    # An admin unsubscribes p1 in Mailchimp (no webhook reaches the connector): the list still
    # has 3 members, 2 of them subscribed.
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "admin_unsubscribe")
    assert len(world.mailchimp.lists[scene.list_id].members) == 3
    # The agent sets p3 to No: the connector unsubscribes it itself.
    world.onoffice.seed([address(3, "p3@example.de", newsletter="0")], replace=False)
    await scene.poll()
    assert scene.member("p3@example.de").status == "unsubscribed"  # type: ignore[union-attr]
    status = await scene.status()
    counts = status["counts"]
    assert counts["provider_contacts"] == 1, counts  # p2 only
    # Kept subscribed by the connector: p1 and p2 (it has not heard of p1's opt-out), not p3.
    assert counts["synced_contacts"] == 2, counts
