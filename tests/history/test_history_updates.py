"""Data-only updates are in the consent history: a subscribed person whose name changed in
onOffice is sent to the provider again by the full sync and by the incremental push, and each
send is one small action ("updated: name/salutation/greeting changed"); a sync that reads the
same values again sends nothing and records nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.consent.conftest import Scene, address, eventually
from tests.e2e.conftest import World
from tests.history.test_history_api import P1, person, seed

Make = Callable[..., Any]


def updates(body: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    return [
        (h["value"], h["note"], h["source"])
        for h in body["history"]
        if (h["kind"], h["side"]) == ("action", "provider") and h["value"] == "update"
    ]


async def test_a_data_only_update_is_recorded_and_an_unchanged_read_is_not(
    world: World, scenes: Make
) -> None:
    seed(world, 2)
    scene: Scene = await scenes("mailchimp")
    first = await person(scene, P1)
    assert updates(first) == []

    # The same values read again: nothing is sent, nothing is recorded.
    again = await scene.sync()
    assert again["counts"]["unchanged"] == 2
    assert (await person(scene, P1))["history"] == first["history"]

    # The agent corrects the name: the next run sends p1 again, as an update.
    world.onoffice.seed([address(1, P1, Name="Neumann")], replace=False)
    run = await scene.sync()
    assert run["counts"]["updated"] == 1 and run["counts"]["unchanged"] == 1
    assert scene.member(P1).merge_fields["LNAME"] == "Neumann"  # type: ignore[union-attr]
    body = await person(scene, P1)
    assert updates(body) == [("update", "fields", "full_sync")]
    (entry,) = [h for h in body["history"] if h["value"] == "update"]
    assert entry["source_ref"] == str(run["id"]) and entry["address_id"] == 1
    assert body["history"][: len(first["history"])] == first["history"]
    german = await person(scene, P1, "de")
    (text,) = [h["text"] for h in german["history"] if h["value"] == "update"]
    assert text.startswith("Connector hat bei Mailchimp aktualisiert (Name/Anrede/Briefanrede")

    # The incremental push sends the next change on its own: recorded the same way.
    await scene.poll()
    world.onoffice.seed([address(1, P1, Name="Neumann-Berg")], replace=False)
    await scene.poll()
    await eventually(
        lambda: scene.member(P1).merge_fields["LNAME"] == "Neumann-Berg",  # type: ignore[union-attr]
        "the pushed name",
    )
    body = await person(scene, P1)
    assert updates(body) == [
        ("update", "fields", "full_sync"),
        ("update", "fields", "incremental"),
    ]
    # Nothing else changed for p2: its history has no update.
    assert updates(await person(scene, "p2@example.de")) == []
