"""The preview (`POST /api/v1/syncs {"dry_run": true}`) into a Brevo list that already has
contacts, over HTTP against the emulators: nothing is written to Brevo or onOffice, and its
counts equal those of the run that follows (Brevo's imports do not tell created from updated:
both are null in the run, the preview predicts them from the list it read)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.consent.conftest import Scene, consent_settings, scenes  # noqa: F401  (fixtures)
from tests.e2e.conftest import World
from tests.preview.test_preview import CATEGORIES, book, items, onoffice_writes, preview

Make = Callable[..., Any]
# Brevo's run reports synced, not created/updated (its imports do not say which).
SAME = tuple(c for c in CATEGORIES if c not in ("created", "updated"))


def brevo_state(world: World, scene: Scene) -> dict[str, Any]:
    account = world.brevo.accounts[scene.key]
    return {
        "contacts": {
            c.email: (c.blacklisted, sorted(c.list_ids), sorted(c.list_unsubscribed), c.attributes)
            for c in copy.deepcopy(list(account.contacts.values()))
        },
        "writes": {k: n for k, n in world.brevo.request_counts.items() if not k.startswith("GET")},
        "addresses": copy.deepcopy({i: a.to_dict() for i, a in world.onoffice.addresses.items()}),
        "activities": len(world.onoffice.activities),
        "onoffice_writes": onoffice_writes(world),
    }


async def seeded_brevo(world: World, scenes: Make) -> Scene:  # noqa: F811
    world.onoffice.seed(book())
    scene: Scene = await scenes("brevo", sync=False)
    brevo, account, list_id = world.brevo, world.brevo.accounts[scene.key], int(scene.list_id)
    brevo.seed_contact(account, "anna@example.de", list_ids=[list_id])  # in the list
    brevo.seed_contact(account, "carla@example.de", list_ids=[list_id], blacklisted=True)
    brevo.seed_contact(account, "dora@example.de", list_ids=[list_id])
    brevo.contact_action(account, "dora@example.de", "unsubscribe_list", list_id=list_id)
    return scene


async def test_a_brevo_preview_writes_nothing_and_predicts_the_run(
    world: World,
    scenes: Make,  # noqa: F811
) -> None:
    scene = await seeded_brevo(world, scenes)
    before = brevo_state(world, scene)
    found = await preview(scene)
    assert found["status"] == "completed", found
    assert brevo_state(world, scene) == before  # nothing written on either side
    assert (await scene.api("GET", "/api/v1/syncs")).json() == []
    counts = found["counts"]
    # anna is in the list (updated); bernd, emil (unknown to Brevo) are new.
    assert (counts["created"], counts["updated"]) == (2, 1), counts
    assert counts["duplicates"] == 1 and counts["invalid_emails"] == 2
    # carla blacklisted and dora unsubscribed from the list: written back as No; franz opted
    # out on his other onOffice address.
    assert counts["opted_out"] == 3 and counts["written_back"] == 3, counts
    listed = {i["address_id"]: i for i in await items(scene, found["id"], limit=100)}
    assert {a: i["outcome"] for a, i in listed.items() if i["onoffice_write"]} == {
        6: "opted_out",
        7: "opted_out",
        9: "opted_out",
    }
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert {k: counts[k] for k in SAME} == {k: run["counts"][k] for k in SAME}
    assert counts["synced"] == counts["created"] + counts["updated"] + counts["unchanged"]
    assert counts["onoffice_reported_total"] == run["counts"]["onoffice_reported_total"]
    # What the preview said would be written back was written by the run.
    assert {a: scene.newsletter(a) for a in (6, 7, 9)} == {6: "0", 7: "0", 9: "0"}

    # After the run: a second preview predicts nothing to send, like the run after it.
    again = await preview(scene)
    assert again["counts"]["created"] == again["counts"]["updated"] == 0, again["counts"]
    second = await scene.sync()
    assert {k: again["counts"][k] for k in SAME} == {k: second["counts"][k] for k in SAME}
