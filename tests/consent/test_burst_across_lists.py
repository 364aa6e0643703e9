"""Issue #17, the soak's I1 (shard 2/3 at a137edf): an Archive-All burst at list B is held; the
customer's switch under a run is refused (409), but the audience was picked at Mailchimp, so
the reconnect lands on list A, where the same people are still subscribed. The held events
join the new connection (events belong to the tenant). "Apply" then confirmed each removal at
list A ("Mailchimp shows subscribed, not an opt-out"), so onOffice kept Yes, nothing was
written, and the people stayed subscribed at A although a user had applied their removal.

Each removal is confirmed at the list it was made at (the list its webhook names): archived
there, it is applied ("not specified"), and the next full sync at A unsubscribes the person
as "left onOffice" (README, "Consent comes first": a removal at B reaches A with the next full
sync). The other reading of the timing (fewer removals than the threshold: single archives,
applied before the reconnect) ends the same way."""

from __future__ import annotations

import asyncio

import pytest

from emulators.mailchimp import DEFAULT_API_KEY
from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.consent.test_model_lifecycle_bugs import Make
from tests.e2e.conftest import World

PEOPLE = [f"p{i}@example.de" for i in range(1, 6)]


async def connect_list_named_onoffice(scene: Scene) -> None:
    """`PUT /api/v1/connection` with the same key: the list named "onoffice"."""
    saved = await scene.api(
        "PUT", "/api/v1/connection", json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY}
    )
    assert saved.status_code == 200, saved.text
    scene.list_id = saved.json()["list_id"]
    (hook,) = scene.world.mailchimp.lists[scene.list_id].webhooks.values()
    scene.hook_url = hook["url"]
    run = await scene.sync()
    assert run["status"] == "completed", run


async def held(scene: Scene) -> int:
    return int((await scene.status())["pending"]["held_inbound_events"])


@pytest.mark.parametrize("removed", [5, 4], ids=["held-burst", "single-archives"])
async def test_a_removal_at_the_list_left_is_confirmed_there_and_reaches_the_new_list(
    world: World, scenes: Make, removed: int
) -> None:
    world.onoffice.seed([address(i, email) for i, email in enumerate(PEOPLE, start=1)])
    scene: Scene = await scenes("mailchimp")
    lists = world.mailchimp.lists
    list_a = scene.list_id
    lists[list_a].name = "old-a"  # the customer picks another audience: B (new)
    await connect_list_named_onoffice(scene)
    list_b = scene.list_id
    assert list_b != list_a
    threshold = scene.connector.settings.ARCHIVE_BURST_THRESHOLD
    assert removed == threshold or removed < threshold

    # Archive All at B (or fewer archives than the threshold: single archives).
    gone = PEOPLE[:removed]
    for email in gone:
        world.mailchimp.member_action(list_b, email, "archive")
    when = fired_at()
    await asyncio.gather(
        *(scene.mailchimp_event("unsubscribe", e, when, action="archive") for e in gone)
    )
    if removed == threshold:

        async def all_held() -> bool:
            return await held(scene) == removed

        await eventually(all_held, "the burst held")
    else:
        await scene.settled()  # each single archive waits out the window, then applies
        assert [scene.newsletter(i) for i in range(1, 6)] == ["4"] * removed + ["1"]

    # Back to A: the audience is picked at Mailchimp, then disconnect and connect again.
    lists[list_b].name, lists[list_a].name = "old-b", "onoffice"
    response = await scene.api("DELETE", "/api/v1/connection")
    assert response.status_code == 204, response.text
    await connect_list_named_onoffice(scene)
    assert scene.list_id == list_a
    if removed == threshold:
        assert await held(scene) == removed  # adopted by the new connection, still held
        assert [scene.newsletter(i) for i in range(1, 6)] == ["1"] * 5  # I5 until decided
        response = await scene.api("POST", "/api/v1/held-events/apply")
        assert response.status_code == 200, response.text
        await scene.settled()
        # The removals are archived at B, where they were made: applied, not "unconfirmed".
        assert [scene.newsletter(i) for i in range(1, 6)] == ["4"] * removed
    # The next full sync at A unsubscribes them as "left onOffice"; five of five synced
    # contacts at once is what the safety valve holds for an approval.
    run = await scene.sync()
    assert run["status"] == "completed", run
    if int(run["counts"].get("held_unsubscribes") or 0):
        assert removed == threshold, run  # four of five are not held
        response = await scene.api("POST", f"/api/v1/syncs/{run['id']}/approve-unsubscribes")
        assert response.status_code == 202, response.text
        await eventually(lambda: _unsubscribed(scene, gone), "the approved unsubscribes")
    statuses = [scene.member(e).status for e in PEOPLE]  # type: ignore[union-attr]
    assert statuses == ["unsubscribed"] * removed + ["subscribed"] * (5 - removed), statuses
    at_b = {m.email: m.status for m in lists[list_b].members.values()}
    assert all(at_b[e] == "archived" for e in gone), at_b  # nothing re-added at B


def _unsubscribed(scene: Scene, emails: list[str]) -> bool:
    return all(scene.member(e).status == "unsubscribed" for e in emails)  # type: ignore[union-attr]


async def archived_at(scene: Scene) -> dict[str, bool]:
    """The connection's "archived at the provider" list: email -> dismissed."""
    response = await scene.api("GET", "/api/v1/connection/archived")
    assert response.status_code == 200, response.text
    return {item["email"]: item["dismissed"] for item in response.json()["items"]}


async def test_a_dismissed_burst_of_the_list_left_is_remembered_there_not_at_the_new_list(
    world: World, scenes: Make
) -> None:
    """The held Archive-All burst of list B, adopted by a reconnect to list A, is dismissed.
    The people are subscribed at A: A's ledger must not call them archived (before the fix
    A's "archived at the provider" list showed all five, dismissed). The dismissal belongs to
    B: back at B its ledger knows it, and a late single archive of one of them is not applied
    (the dismissal is remembered per member, rule 3)."""
    world.onoffice.seed([address(i, email) for i, email in enumerate(PEOPLE, start=1)])
    scene: Scene = await scenes("mailchimp")
    lists = world.mailchimp.lists
    list_a = scene.list_id
    lists[list_a].name = "old-a"
    await connect_list_named_onoffice(scene)
    list_b = scene.list_id
    assert len(PEOPLE) >= scene.connector.settings.ARCHIVE_BURST_THRESHOLD
    for email in PEOPLE:
        world.mailchimp.member_action(list_b, email, "archive")
    when = fired_at()
    await asyncio.gather(
        *(scene.mailchimp_event("unsubscribe", e, when, action="archive") for e in PEOPLE)
    )

    async def all_held() -> bool:
        return await held(scene) == len(PEOPLE)

    await eventually(all_held, "the burst held")
    lists[list_b].name, lists[list_a].name = "old-b", "onoffice"
    response = await scene.api("DELETE", "/api/v1/connection")
    assert response.status_code == 204, response.text
    await connect_list_named_onoffice(scene)
    assert scene.list_id == list_a
    assert await held(scene) == len(PEOPLE)

    dismissed = await scene.api("POST", "/api/v1/held-events/dismiss")
    assert dismissed.status_code == 200, dismissed.text
    assert dismissed.json()["events"] == len(PEOPLE)
    await scene.settled()
    assert await archived_at(scene) == {}  # subscribed at A: not archived here
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert int(run["counts"]["archived"]) == 0, run["counts"]
    assert [scene.member(e).status for e in PEOPLE] == ["subscribed"] * 5  # type: ignore[union-attr]
    assert [scene.newsletter(i) for i in range(1, 6)] == ["1"] * 5

    # Back to B: its ledger comes back with the dismissal.
    lists[list_a].name, lists[list_b].name = "old-a", "onoffice"
    response = await scene.api("DELETE", "/api/v1/connection")
    assert response.status_code == 204, response.text
    await connect_list_named_onoffice(scene)
    assert scene.list_id == list_b
    assert await archived_at(scene) == dict.fromkeys(PEOPLE, True)
    # Mailchimp delivers one archive again, alone (no burst): still not applied.
    await scene.mailchimp_event("unsubscribe", PEOPLE[1], fired_at(5), action="archive")
    await scene.settled()
    assert [scene.newsletter(i) for i in range(1, 6)] == ["1"] * 5
