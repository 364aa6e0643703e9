"""One person across duplicate addresses (issue #17, story 1), over HTTP against the emulators.

Anna has addresses 1 and 2 with the same email. A "No" on either of them is the person's
opt-out: the provider is unsubscribed, the other address gets "No" with an activity naming the
address that carried it, and neither the next full sync nor an edit of the other address undoes
it. Only a newer explicit change to "Yes" is a fresh consent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.consent.conftest import Scene, address, eventually
from tests.e2e.conftest import World

Make = Callable[..., Any]
ANNA = "anna@example.de"


def book(world: World) -> None:
    # Last edited a while ago (outside the poll's 10-minute overlap).
    world.onoffice.clock_offset = -3600
    world.onoffice.seed([address(1, ANNA), address(2, ANNA), address(3, "bob@x.de")])
    world.onoffice.clock_offset = 0


def subscribed(scene: Scene) -> bool:
    if scene.provider == "mailchimp":
        member = scene.member(ANNA)
        return member is not None and member.status == "subscribed"
    contact = scene.brevo_contact(ANNA)
    return (
        contact is not None
        and not contact.blacklisted
        and int(scene.list_id) in contact.list_ids
        and int(scene.list_id) not in contact.list_unsubscribed
    )


def names(scene: Scene, address_id: int, carrier: int) -> bool:
    """Address `address_id` has an activity naming address `carrier`."""
    return any(f" {carrier} " in a["note"] for a in scene.activities(address_id))


async def set_newsletter(scene: Scene, address_id: int, value: str, **kw: Any) -> None:
    scene.world.onoffice.seed([address(address_id, ANNA, newsletter=value, **kw)], replace=False)


async def opted_out_everywhere(scene: Scene, carrier: int, other: int) -> None:
    await eventually(lambda: not subscribed(scene), "the provider unsubscribed")
    await eventually(lambda: scene.newsletter(other) == "0", f"No on address {other}")
    await eventually(lambda: names(scene, other, carrier), f"an activity naming {carrier}")
    await scene.settled()
    assert scene.newsletter(carrier) == "0"


@pytest.mark.parametrize("provider", ["mailchimp", "brevo"])
async def test_story1_a_no_on_one_duplicate_is_not_undone(
    world: World, scenes: Make, provider: str
) -> None:
    book(world)
    scene: Scene = await scenes(provider)
    assert subscribed(scene)
    await scene.poll()  # the first poll sets the watermark
    await set_newsletter(scene, 1, "0")  # Anna asks to be removed; the agent edits address 1
    await scene.poll()
    await opted_out_everywhere(scene, carrier=1, other=2)
    await asyncio.sleep(6)  # beyond the 5 s tie
    run = await scene.sync()
    assert run["status"] == "completed", run
    await scene.settled()
    assert not subscribed(scene)
    if provider == "brevo":
        assert scene.brevo_contact(ANNA).blacklisted is True  # never lifted
    # An unrelated edit of address 2 (its name) reaches the poll: still no fresh consent.
    await set_newsletter(scene, 2, "0", Vorname="Annemarie")
    await scene.poll()
    await scene.settled()
    assert not subscribed(scene)
    assert [scene.newsletter(1), scene.newsletter(2)] == ["0", "0"]


async def test_story1_a_no_on_the_duplicate_address_unsubscribes(
    world: World, scenes: Make
) -> None:
    book(world)
    # A third address with her email says "not specified": it does not speak for her.
    world.onoffice.seed([address(5, ANNA, newsletter="4")], replace=False)
    scene: Scene = await scenes("mailchimp")
    assert subscribed(scene)
    await scene.poll()
    await set_newsletter(scene, 2, "0")  # the duplicate, not the address the ledger owns
    await scene.poll()
    await opted_out_everywhere(scene, carrier=2, other=1)
    assert scene.newsletter(5) == "4"  # only addresses still on Yes are set to No
    assert scene.activities(5) == []


@pytest.mark.parametrize("provider", ["mailchimp", "brevo"])
async def test_story1_a_no_on_a_duplicate_first_seen_by_the_full_sync_unsubscribes(
    world: World, scenes: Make, provider: str
) -> None:
    book(world)
    world.onoffice.seed([address(4, ANNA)], replace=False)  # a third address with her email
    scene: Scene = await scenes(provider)
    await set_newsletter(scene, 2, "0")  # no poll: the next full sync is the first to see it
    run = await scene.sync()
    assert run["status"] == "completed", run
    await opted_out_everywhere(scene, carrier=2, other=1)
    await eventually(lambda: scene.newsletter(4) == "0", "No on address 4")
    assert run["counts"]["opted_out"] == 1 and run["counts"]["duplicates"] == 1, run
    problems = {p["address_id"]: p for p in await scene.problems(run["id"])}
    assert sorted(problems) == [1, 4]  # address 2 (No) is not read
    assert problems[1]["kind"] == "opted_out" and problems[1]["reason_code"] == "opted_out_onoffice"
    assert "2" in problems[1]["reason"], problems[1]
    # The duplicate names the addresses whose values contradict each other.
    assert problems[4]["reason_code"] == "duplicate_conflict", problems[4]
    assert "1, 2, 4" in problems[4]["reason"], problems[4]


@pytest.mark.parametrize("provider", ["mailchimp", "brevo"])
async def test_story1_a_no_on_a_duplicate_stored_with_stray_spaces_unsubscribes(
    world: World, scenes: Make, provider: str
) -> None:
    # The agent pasted Anna's email with spaces around it into address 2 and set No: the same
    # person (the full sync's person read asks for the email with a leading space too).
    book(world)
    scene: Scene = await scenes(provider)
    await set_newsletter(scene, 2, "0", Email=" Anna@Example.de  ")
    run = await scene.sync()
    assert run["status"] == "completed", run
    await opted_out_everywhere(scene, carrier=2, other=1)
    assert run["counts"]["opted_out"] == 1, run


@pytest.mark.parametrize("provider", ["mailchimp", "brevo"])
async def test_story1_a_newer_yes_after_the_opt_out_is_a_fresh_consent(
    world: World, scenes: Make, provider: str
) -> None:
    book(world)
    scene: Scene = await scenes(provider)
    await scene.poll()
    await set_newsletter(scene, 1, "0")
    await scene.poll()
    await opted_out_everywhere(scene, carrier=1, other=2)
    await asyncio.sleep(6)  # beyond the 5 s tie
    # Anna calls again and wants the newsletter: the agent sets Yes on address 1.
    await set_newsletter(scene, 1, "1")
    await scene.poll()
    await eventually(lambda: subscribed(scene), "the fresh consent subscribed")
    # The next full sync keeps her, and names the duplicate whose value contradicts.
    run = await scene.sync()
    assert run["status"] == "completed", run
    await scene.settled()
    assert subscribed(scene)
    assert [scene.newsletter(1), scene.newsletter(2)] == ["1", "0"]
    assert run["counts"]["synced"] == 2 and run["counts"]["opted_out"] == 0, run
