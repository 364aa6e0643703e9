"""Issue #17 stories 2 and 9 over HTTP against the emulators: members archived at the provider
("Archive All", a cost clean-up) and bounces are not consent. Each test fails on 14d94d8."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.e2e.conftest import World

Make = Callable[..., Any]


def member_time(delta_s: float) -> str:
    """A member's `last_changed` at Mailchimp, `delta_s` from now."""
    return datetime.fromtimestamp(time.time() + delta_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def seed(world: World, n: int, **kw: Any) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de", **kw) for i in range(1, n + 1)])


async def archived_list(scene: Scene) -> dict[str, dict[str, Any]]:
    response = await scene.api("GET", "/api/v1/connection/archived")
    assert response.status_code == 200, response.text
    return {item["email"]: item for item in response.json()["items"]}


async def test_story2_dismissed_archive_all_leaves_onoffice_unchanged_on_the_next_sync(
    world: World, scenes: Make
) -> None:
    """N1: the burst is held and dismissed; the next full sync lists the members as archived
    at the provider and writes nothing to onOffice; a late archive event of one of them is
    not applied either (the dismissal is remembered per member)."""
    seed(world, 7)
    scene: Scene = await scenes("mailchimp")
    burst_at = fired_at()
    for i in range(1, 7):  # "Archive All": each member archived, one webhook each
        world.mailchimp.member_action(scene.list_id, f"p{i}@example.de", "archive")
        await scene.mailchimp_event("unsubscribe", f"p{i}@example.de", burst_at, action="archive")

    async def held() -> bool:
        return int((await scene.status())["pending"]["held_inbound_events"]) == 6

    await eventually(held, "the burst held")
    dismissed = await scene.api("POST", "/api/v1/held-events/dismiss")
    assert dismissed.json()["events"] == 6
    await scene.settled()
    run = await scene.sync()
    status = await scene.settled()
    assert [scene.newsletter(i) for i in range(1, 8)] == ["1"] * 7  # 14d94d8: six "4"
    counts = run["counts"]
    assert (counts["archived"], counts["opted_out"], counts["synced"]) == (6, 0, 1), counts
    assert counts["reconciled"] is True, counts
    problems = await scene.problems(run["id"])
    assert sorted((p["address_id"], p["kind"]) for p in problems) == [
        (i, "archived") for i in range(1, 7)
    ]
    # The run card's reason and the status card's "held back" line name the new kind.
    assert {p["reason_code"] for p in problems} == {"archived_provider"}, problems
    assert all("not re-added" in p["reason"] for p in problems), problems
    assert status["pending"]["failed_inbound_events"] == 0
    held_back = [(h["reason_code"], h["count"]) for h in status["held_back"]]
    assert ("archived_provider", 6) in held_back, held_back
    assert all(scene.member(f"p{i}@example.de").status == "archived" for i in range(1, 7))  # type: ignore[union-attr]
    listed = await archived_list(scene)
    assert sorted(listed) == [f"p{i}@example.de" for i in range(1, 7)]
    assert all(item["dismissed"] for item in listed.values())
    # Mailchimp delivers one of the burst's archives again, alone and in another form (no
    # burst): still not applied.
    await scene.mailchimp_event(
        "unsubscribe", "p2@example.de", burst_at, action="archive", reason="manual"
    )
    await scene.settled()
    assert scene.newsletter(2) == "1"
    assert not any("archiviert" in a["note"] for a in scene.activities(2))


@pytest.mark.parametrize("signup_webhook", [True, False], ids=["signup-seen", "signup-lost"])
async def test_story2_a_dismissed_member_who_signs_up_again_and_is_archived_alone_is_applied(
    world: World, scenes: Make, signup_webhook: bool
) -> None:
    """The dismissal of a burst is remembered for that removal, not for ever: p2 signs up again
    at Mailchimp after the burst (its webhook is the connector's own state: no change), the user
    dismisses the burst, and later p2 alone is archived. That single archive is the newest
    signal and keeps the seed's rule ("not specified" after the window) on both of p2's
    addresses (the soak's I2 example of session 12 ignored it as part of the dismissed burst):
    it is clearly newer than the dismissed removal (`judge_event`), whether the sign-up's
    webhook arrived (ignored: the ledger already has p2 subscribed) or was lost."""
    world.onoffice.seed(
        [address(i, f"p{i}@example.de") for i in range(1, 7)] + [address(7, "p2@example.de")]
    )
    scene: Scene = await scenes("mailchimp")
    # Mailchimp's clock a little ahead: the burst, the sign-up and the archive each clearly
    # (more than the 5 s tie) after the one before, and the burst after the first sync.
    burst_at = fired_at(6)
    for i in range(1, 7):
        world.mailchimp.member_action(
            scene.list_id, f"p{i}@example.de", "archive", at=member_time(6)
        )
        await scene.mailchimp_event("unsubscribe", f"p{i}@example.de", burst_at, action="archive")

    async def held() -> bool:
        return int((await scene.status())["pending"]["held_inbound_events"]) == 6

    await eventually(held, "the burst held")
    world.mailchimp.member_action(scene.list_id, "p2@example.de", "subscribe", at=member_time(20))
    if signup_webhook:
        await scene.mailchimp_event("subscribe", "p2@example.de", fired_at(20))
    await scene.settled()
    dismissed = await scene.api("POST", "/api/v1/held-events/dismiss")
    assert dismissed.json()["events"] == 6
    await scene.settled()
    assert [scene.newsletter(i) for i in (2, 7)] == ["1", "1"]
    world.mailchimp.member_action(scene.list_id, "p2@example.de", "archive", at=member_time(40))
    await scene.mailchimp_event("unsubscribe", "p2@example.de", fired_at(40), action="archive")

    async def removed() -> bool:
        return [scene.newsletter(i) for i in (2, 7)] == ["4", "4"]

    await eventually(removed, "p2's own archive written as 'not specified'")
    # p1's dismissed removal still stands.
    assert scene.newsletter(1) == "1"


async def first_sync_into_an_archived_audience(world: World, scenes: Make) -> Scene:
    """An existing audience whose members 1-3 were archived to save costs; onOffice says Yes
    for 1-5. The first sync of the new connection."""
    lst = world.mailchimp.create_list("onoffice")
    for i in range(1, 4):
        world.mailchimp.seed_member(lst.id, f"p{i}@example.de", status="archived")
    world.mailchimp.seed_member(lst.id, "p4@example.de", status="subscribed")
    seed(world, 5)
    scene: Scene = await scenes("mailchimp", sync=False)
    assert scene.list_id == lst.id
    return scene


async def test_story2_first_sync_into_an_audience_with_archived_members_writes_nothing_back(
    world: World, scenes: Make
) -> None:
    scene = await first_sync_into_an_archived_audience(world, scenes)
    run = await scene.sync()
    await scene.settled()
    # Nothing written back to onOffice (14d94d8: "not specified"), nobody re-added.
    assert [scene.newsletter(i) for i in range(1, 6)] == ["1"] * 5
    assert not any(scene.activities(i) for i in range(1, 4))
    counts = run["counts"]
    assert (counts["archived"], counts["synced"], counts["opted_out"]) == (3, 2, 0), counts
    assert counts["reconciled"] is True, counts
    assert [scene.member(f"p{i}@example.de").status for i in range(1, 6)] == [  # type: ignore[union-attr]
        "archived", "archived", "archived", "subscribed", "subscribed"
    ]  # fmt: skip
    assert sorted(await archived_list(scene)) == [f"p{i}@example.de" for i in range(1, 4)]
    # A second run changes nothing either.
    again = await scene.sync()
    assert again["counts"]["archived"] == 3 and again["counts"]["unsubscribed"] == 0
    assert scene.member("p1@example.de").status == "archived"  # type: ignore[union-attr]
    # Nor does the incremental push after an agent edits the archived member's name.
    await scene.poll()  # the first poll sets the watermark
    world.onoffice.seed([address(1, "p1@example.de", Name="Neumann")], replace=False)
    await scene.poll()
    await scene.settled()
    assert scene.newsletter(1) == "1"
    assert scene.member("p1@example.de").status == "archived"  # type: ignore[union-attr]


async def test_story2_restore_of_a_selected_archived_member(world: World, scenes: Make) -> None:
    scene = await first_sync_into_an_archived_audience(world, scenes)
    await scene.sync()
    # Since the sync, the agent set address 3 to No: it must not be restored.
    world.onoffice.seed([address(3, "p3@example.de", newsletter="0")], replace=False)
    response = await scene.api(
        "POST",
        "/api/v1/connection/archived/restore",
        json={"emails": ["P1@example.de ", "p3@example.de", "p4@example.de"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["restored"] == ["p1@example.de"]
    assert {(r["email"], r["code"]) for r in body["refused"]} == {
        ("p3@example.de", "onoffice_not_yes"),
        ("p4@example.de", "not_archived"),
    }
    member = scene.member("p1@example.de")
    assert member is not None and member.status == "subscribed"
    assert scene.member("p2@example.de").status == "archived"  # type: ignore[union-attr]
    assert scene.member("p3@example.de").status == "archived"  # type: ignore[union-attr]
    assert "p1@example.de" not in await archived_list(scene)
    # The next sync keeps p1 subscribed and p2 archived.
    run = await scene.sync()
    assert run["counts"]["archived"] == 1 and run["counts"]["synced"] == 3, run["counts"]
    assert scene.member("p1@example.de").status == "subscribed"  # type: ignore[union-attr]
    assert scene.member("p2@example.de").status == "archived"  # type: ignore[union-attr]
    # Validation: nothing selected is a 422, a missing connection a 404.
    empty = await scene.api("POST", "/api/v1/connection/archived/restore", json={"emails": []})
    assert empty.status_code == 422


async def test_story9_cleaned_keeps_yes_is_listed_as_bounced_and_a_new_email_is_synced(
    world: World, scenes: Make
) -> None:
    seed(world, 2)
    scene: Scene = await scenes("mailchimp")
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "clean")
    await scene.mailchimp_event("cleaned", "p1@example.de", fired_at(), reason="hard")
    await scene.settled()
    # A bounce is not an opt-out: onOffice keeps Yes, an activity records the bounce.
    assert scene.newsletter(1) == "1"
    notes = [a["note"] for a in scene.activities(1)]
    assert len(notes) == 1 and "bereinigt" in notes[0], notes
    # Mailchimp reports the same bounce again later: recorded once.
    await scene.mailchimp_event("cleaned", "p1@example.de", fired_at(30), reason="hard")
    await scene.settled()
    assert len(scene.activities(1)) == 1
    # The next (forced) sync lists it as bounced and does not send it.
    run = await scene.sync(force=True)
    assert (run["counts"]["bounced"], run["counts"]["synced"]) == (1, 1), run["counts"]
    problems = await scene.problems(run["id"])
    assert [(p["address_id"], p["kind"]) for p in problems] == [(1, "bounced")]
    assert scene.member("p1@example.de").status == "cleaned"  # type: ignore[union-attr]
    await scene.settled()
    assert len(scene.activities(1)) == 1  # the same bounce is recorded once
    assert scene.newsletter(1) == "1"
    # The agent fixes the email in onOffice: the new email is a new contact.
    world.onoffice.seed([address(1, "p1.fixed@example.de")], replace=False)
    again = await scene.sync()
    assert again["counts"]["bounced"] == 0 and again["counts"]["synced"] == 2, again["counts"]
    fixed = scene.member("p1.fixed@example.de")
    assert fixed is not None and fixed.status == "subscribed"
    assert scene.member("p1@example.de").status == "cleaned"  # type: ignore[union-attr]


async def test_story9_not_specified_does_not_overwrite_doi_pending(
    world: World, scenes: Make
) -> None:
    """D4: a single archive at the provider keeps the seed's rule ("not specified" after the
    archive window), except over double opt-in pending (nor No or Cancellation)."""
    world.onoffice.seed([address(1, "p1@example.de", newsletter="3"), address(2, "p2@example.de")])
    scene: Scene = await scenes("mailchimp")
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "archive")
    world.mailchimp.member_action(scene.list_id, "p2@example.de", "archive")
    await scene.mailchimp_event("unsubscribe", "p1@example.de", fired_at(), action="archive")
    await scene.mailchimp_event("unsubscribe", "p2@example.de", fired_at(), action="archive")
    await eventually(lambda: scene.newsletter(2) == "4", "the single archive applied")
    await scene.settled()
    assert scene.newsletter(1) == "3"


async def test_story9_a_brevo_hard_bounce_keeps_yes_and_is_not_sent_again(
    world: World, scenes: Make
) -> None:
    seed(world, 2)
    scene: Scene = await scenes("brevo")
    bounce = {"event": "hard_bounce", "email": "p1@example.de", "ts": int(time.time())}
    await scene.brevo_event(bounce | {"reason": "no such mailbox"})
    await scene.settled()
    assert scene.newsletter(1) == "1"
    run = await scene.sync(force=True)
    assert (run["counts"]["bounced"], run["counts"]["synced"]) == (1, 1), run["counts"]
    problems = await scene.problems(run["id"])
    assert [(p["address_id"], p["kind"]) for p in problems] == [(1, "bounced")]
    await scene.settled()
    assert scene.newsletter(1) == "1"
