"""Story 7 (issue #17, review N6): tags by three-way merge against the set last synced. Over
HTTP, embedded jobs, the emulators: the agent edits onOffice, a marketer edits Mailchimp's tags,
a full sync merges both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulators.mailchimp import subscriber_hash
from emulators.onoffice.state import ReadHook
from tests.consent.conftest import Scene, address
from tests.e2e.conftest import World

Make = Callable[..., Any]
ANNA = "anna@example.de"


def onoffice_tags(world: World, address_id: int = 1) -> list[str]:
    return sorted(world.onoffice.addresses[address_id].to_dict().get("NewsletterTag") or [])


def mailchimp_tags(scene: Scene, email: str = ANNA) -> list[str]:
    member = scene.member(email)
    assert member is not None
    return sorted(member.tags)


def marketer_tags(scene: Scene, *, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> None:
    """A marketer edits the member's tags inside Mailchimp (no webhook: tags only flow back
    with a full sync)."""
    state = scene.world.mailchimp
    lst = state.lists[scene.list_id]
    member = lst.members[subscriber_hash(ANNA)]
    for tag in remove:
        member.tags.pop(tag, None)
    for tag in add:
        member.tags[tag] = state._tag_id(lst, tag)
    lst.version += 1


async def test_story7_a_tag_removed_in_onoffice_does_not_come_back_after_the_sync(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([address(1, ANNA, NewsletterTag=["Kaeufer", "Mieter"])])
    scene: Scene = await scenes("mailchimp")
    assert mailchimp_tags(scene) == ["Kaeufer", "Mieter"]
    # The agent removes "Mieter"; a full sync (not the poll) is the first to see it.
    world.onoffice.seed([address(1, ANNA, NewsletterTag=["Kaeufer"])], replace=False)
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert mailchimp_tags(scene) == ["Kaeufer"]
    assert onoffice_tags(world) == ["Kaeufer"]  # the run's own removal is not undone
    assert run["counts"]["tags_pulled"] == 0
    again = await scene.sync()  # and nothing moves on the next run
    assert again["counts"]["tags_pulled"] == 0
    assert (mailchimp_tags(scene), onoffice_tags(world)) == (["Kaeufer"], ["Kaeufer"])


async def test_story7_a_tag_the_agent_added_during_the_run_is_kept(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([address(1, ANNA, NewsletterTag=["Kaeufer"])])
    scene: Scene = await scenes("mailchimp")
    marketer_tags(scene, add=("Mieter",))  # a tag the pull-back brings to onOffice
    # The agent adds "Verkaeufer" while the run goes on (after it read the address).
    world.onoffice.read_hooks.append(
        ReadHook(
            listoffset=0,
            addresses=[address(1, ANNA, NewsletterTag=["Kaeufer", "Verkaeufer"])],
            when="after",
        )
    )
    run = await scene.sync()
    assert world.onoffice.read_hooks_fired == 1
    assert run["status"] == "completed", run
    assert onoffice_tags(world) == ["Kaeufer", "Mieter", "Verkaeufer"]
    assert mailchimp_tags(scene) == ["Kaeufer", "Mieter", "Verkaeufer"]  # both sides agree


async def test_story7_tag_changes_made_in_mailchimp_since_the_last_sync_reach_onoffice(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed(
        [
            address(1, ANNA, NewsletterTag=["Kaeufer", "Mieter"]),
            address(2, "bob@example.de", NewsletterTag=["Gewerbe"]),
        ]
    )
    scene: Scene = await scenes("mailchimp")
    # The marketer removes "Mieter" and adds "Investor" (typed as the label: same thing).
    marketer_tags(scene, remove=("Mieter",), add=("Investor",))
    # Anna's name changes in onOffice, so the run sends her again (with her tags).
    world.onoffice.seed(
        [address(1, ANNA, Vorname="Anne", NewsletterTag=["Kaeufer", "Mieter"])], replace=False
    )
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert run["counts"]["updated"] == 1
    assert onoffice_tags(world) == ["Investor", "Kaeufer"]  # added flows in, removed goes
    assert mailchimp_tags(scene) == ["Investor", "Kaeufer"]  # the removal is not undone
    assert scene.member(ANNA).merge_fields["FNAME"] == "Anne"  # type: ignore[union-attr]
    assert onoffice_tags(world, 2) == ["Gewerbe"]


async def test_story7_changes_on_both_sides_since_the_last_sync_are_all_kept(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([address(1, ANNA, NewsletterTag=["Kaeufer", "Mieter", "Gewerbe"])])
    scene: Scene = await scenes("mailchimp")
    # Since the last sync: the agent removed "Mieter" and added "Neubau"; the marketer removed
    # "Kaeufer" and added "Investor".
    world.onoffice.seed(
        [address(1, ANNA, NewsletterTag=["Kaeufer", "Gewerbe", "Neubau"])], replace=False
    )
    marketer_tags(scene, remove=("Kaeufer",), add=("Investor",))
    run = await scene.sync()
    assert run["status"] == "completed", run
    both = ["Gewerbe", "Investor", "Neubau"]
    assert (onoffice_tags(world), mailchimp_tags(scene)) == (both, both)


async def test_story7_the_push_does_not_add_back_a_tag_removed_in_mailchimp(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([address(1, ANNA, NewsletterTag=["Kaeufer", "Mieter"])])
    scene: Scene = await scenes("mailchimp")
    await scene.poll()  # the first poll sets the watermark
    marketer_tags(scene, remove=("Mieter",))
    # The agent edits Anna's name and adds a tag; the incremental push sends her.
    world.onoffice.seed(
        [address(1, ANNA, Vorname="Anne", NewsletterTag=["Kaeufer", "Mieter", "Neubau"])],
        replace=False,
    )
    await scene.poll()
    assert scene.member(ANNA).merge_fields["FNAME"] == "Anne"  # type: ignore[union-attr]
    assert mailchimp_tags(scene) == ["Kaeufer", "Neubau"]  # Mieter stays removed
    run = await scene.sync()  # the full sync's merge takes it out of onOffice too
    assert run["status"] == "completed", run
    assert onoffice_tags(world) == ["Kaeufer", "Neubau"]
    assert mailchimp_tags(scene) == ["Kaeufer", "Neubau"]


async def test_the_pull_back_reaches_every_address_of_the_person(
    world: World, scenes: Make
) -> None:
    """Anna has two addresses with one email (a duplicate): a tag a marketer adds or removes
    in Mailchimp reaches both, each by its own merge; nothing comes back on the next runs, not
    even when the duplicate becomes her main address; Bob's address is not touched."""
    world.onoffice.seed(
        [
            address(1, ANNA, NewsletterTag=["Kaeufer"]),
            address(2, ANNA, NewsletterTag=["Kaeufer"]),
            address(3, "bob@example.de", NewsletterTag=["Kaeufer"]),
        ]
    )
    scene: Scene = await scenes("mailchimp")
    assert mailchimp_tags(scene) == ["Kaeufer"]
    world.onoffice.access_log = []  # every address onOffice is asked to change, from now on
    marketer_tags(scene, add=("Mieter",))
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert (onoffice_tags(world, 1), onoffice_tags(world, 2)) == (["Kaeufer", "Mieter"],) * 2
    assert run["counts"]["tags_pulled"] == 2  # both of Anna's addresses, written once each
    marketer_tags(scene, remove=("Kaeufer",))
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert (onoffice_tags(world, 1), onoffice_tags(world, 2)) == (["Mieter"], ["Mieter"])
    assert mailchimp_tags(scene) == ["Mieter"]
    again = await scene.sync()  # nothing moves on the next run
    assert again["status"] == "completed", again
    assert again["counts"]["tags_pulled"] == 0
    assert (onoffice_tags(world, 1), onoffice_tags(world, 2)) == (["Mieter"], ["Mieter"])
    assert mailchimp_tags(scene) == ["Mieter"]
    # The agent archives address 1 (merging the duplicates): address 2 now carries Anna. A tag
    # left on it would count as onOffice's own change and go back to Mailchimp.
    world.onoffice.seed([address(1, ANNA, Status="0", NewsletterTag=["Mieter"])], replace=False)
    merged = await scene.sync()
    assert merged["status"] == "completed", merged
    assert mailchimp_tags(scene) == ["Mieter"]
    assert onoffice_tags(world, 2) == ["Mieter"]
    assert onoffice_tags(world, 3) == ["Kaeufer"]  # another email: never touched
    assert {i for _claim, op, i in world.onoffice.access_log if op == "modify"} == {1, 2}
    assert sorted(mailchimp_tags(scene, "bob@example.de")) == ["Kaeufer"]
