"""Issue #17, the soak's I1 of session 11 (shard 0 at 949fc02, also on ff3b117): p1 is archived
at list A and the removal is applied ("not specified" on its address); the agent then gives
another address, which says Yes, p1's email. At A the person is "archived at the provider",
not re-added (the Yes never changed: no fresh consent). The customer moves the connection to a
new list B (a switch, or a disconnect and a connection to B): B's ledger started empty, so its
first full sync took the unchanged Yes for consent and subscribed p1, whose newest explicit
signal is the archive.

A list the connection switches or reconnects to now starts, for each person it has no row for,
from the person's newest opt-out or removal at the customer's other lists
(`LifecycleRepository.carry_opt_outs`, `rules.carried_opt_out`). A fresh Yes after it still
subscribes; a removal a user dismissed as an Archive-All clean-up is not carried."""

from __future__ import annotations

import pytest

from emulators.mailchimp import DEFAULT_API_KEY
from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.consent.test_model_lifecycle_bugs import Make
from tests.e2e.conftest import World


async def move_to_a_new_list(scene: Scene, how: str) -> str:
    """The customer picks another audience (the current one renamed at Mailchimp, so the
    connector creates a new "onoffice"), by saving the connection again or by disconnecting
    and connecting; then the full sync at the new list. Its id."""
    old = scene.list_id
    scene.world.mailchimp.lists[old].name = f"old-{old}"
    if how == "reconnect":
        gone = await scene.api("DELETE", "/api/v1/connection")
        assert gone.status_code == 204, gone.text
    saved = await scene.api(
        "PUT", "/api/v1/connection", json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY}
    )
    assert saved.status_code == 200, saved.text
    scene.list_id = saved.json()["list_id"]
    assert scene.list_id != old
    (hook,) = scene.world.mailchimp.lists[scene.list_id].webhooks.values()
    scene.hook_url = hook["url"]
    return scene.list_id


async def archive_p1_and_give_its_email_to_address_3(world: World, scene: Scene) -> None:
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "archive")
    await scene.mailchimp_event("unsubscribe", "p1@example.de", fired_at(), action="archive")

    async def applied() -> bool:
        return scene.newsletter(1) == "4"  # "not specified" after the archive window

    await eventually(applied, "p1's archive applied")
    await scene.settled()
    emu = world.onoffice.addresses[3]  # says Yes
    emu.emails = ["p1@example.de"]
    world.onoffice.touch(emu)
    await scene.poll()
    await scene.settled()


@pytest.mark.parametrize("how", ["switch", "reconnect"])
async def test_a_removal_at_the_old_list_keeps_an_unchanged_yes_from_the_new_list(
    world: World, scenes: Make, how: str
) -> None:
    world.onoffice.seed(
        [address(1, "p1@example.de"), address(2, "p2@example.de"), address(3, "p3@example.de")]
    )
    scene: Scene = await scenes("mailchimp")
    await archive_p1_and_give_its_email_to_address_3(world, scene)
    assert scene.member("p1@example.de").status == "archived"  # type: ignore[union-attr]
    assert scene.newsletter(3) == "1"

    await move_to_a_new_list(scene, how)
    run = await scene.sync()
    assert run["status"] == "completed", run
    # On 2d69fa3 p1 was subscribed at the new list.
    assert scene.member("p1@example.de") is None
    assert scene.member("p2@example.de").status == "subscribed"  # type: ignore[union-attr]
    problems = await scene.problems(run["id"])
    assert [(p["address_id"], p["kind"]) for p in problems] == [(3, "archived")], problems
    # Nothing is written to onOffice: address 3 keeps Yes (a removal is not an opt-out).
    assert [scene.newsletter(i) for i in (1, 3)] == ["4", "1"]

    # The agent sets address 3 to No and back to Yes: a fresh consent, subscribed at the new
    # list by the incremental push.
    emu = world.onoffice.addresses[3]
    for value in ("0", "1"):
        emu.newsletter = value
        world.onoffice.touch(emu)
        await scene.poll()
        await scene.settled()
    member = scene.member("p1@example.de")
    assert member is not None and member.status == "subscribed", member


async def test_a_dismissed_archive_all_is_not_carried_to_the_new_list(
    world: World, scenes: Make
) -> None:
    """A burst a user dismissed was a clean-up, not the people's word: the new list's first
    full sync subscribes them (onOffice says Yes)."""
    threshold = 5
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, threshold + 2)])
    scene: Scene = await scenes("mailchimp")
    assert threshold == scene.connector.settings.ARCHIVE_BURST_THRESHOLD
    burst_at = fired_at()
    for i in range(1, threshold + 1):
        world.mailchimp.member_action(scene.list_id, f"p{i}@example.de", "archive")
        await scene.mailchimp_event("unsubscribe", f"p{i}@example.de", burst_at, action="archive")

    async def held() -> bool:
        return int((await scene.status())["pending"]["held_inbound_events"]) == threshold

    await eventually(held, "the burst held")
    dismissed = await scene.api("POST", "/api/v1/held-events/dismiss")
    assert dismissed.json()["events"] == threshold
    await scene.settled()
    await move_to_a_new_list(scene, "switch")
    run = await scene.sync()
    assert run["status"] == "completed", run
    members = [scene.member(f"p{i}@example.de") for i in range(1, threshold + 2)]
    assert [m.status if m else None for m in members] == ["subscribed"] * (threshold + 1)


async def test_a_removal_at_the_list_left_reaches_the_list_returned_to(
    world: World, scenes: Make
) -> None:
    """A -> B -> A: p1 is subscribed at A; at B it is archived (applied: "not specified") and
    the agent gives address 3 (Yes) its email. Back at A, A's own ledger comes back (p1
    subscribed there) and the removal at B is newer: the run lists p1 as archived, and p1 is
    removed from A too (archived there) instead of staying subscribed; onOffice keeps Yes on
    address 3 (a removal is not an opt-out)."""
    world.onoffice.seed(
        [address(1, "p1@example.de"), address(2, "p2@example.de"), address(3, "p3@example.de")]
    )
    scene: Scene = await scenes("mailchimp")
    list_a = scene.list_id
    await move_to_a_new_list(scene, "switch")
    run = await scene.sync()
    assert run["status"] == "completed", run
    await archive_p1_and_give_its_email_to_address_3(world, scene)

    scene.world.mailchimp.lists[list_a].name = "onoffice"  # the customer picks A again
    assert await move_to_a_new_list(scene, "switch") == list_a
    run = await scene.sync()
    assert run["status"] == "completed", run
    await scene.settled()
    # On d72d812 p1 stayed subscribed at A.
    member = scene.member("p1@example.de")
    assert member is not None and member.status == "archived", member
    assert scene.member("p2@example.de").status == "subscribed"  # type: ignore[union-attr]
    problems = await scene.problems(run["id"])
    assert [(p["address_id"], p["kind"]) for p in problems] == [(3, "archived")], problems
    assert [scene.newsletter(i) for i in (1, 3)] == ["4", "1"]
