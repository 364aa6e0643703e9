"""The preview (`POST /api/v1/syncs {"dry_run": true}`) over HTTP against the emulators:
nothing is written on either side, and its counts equal those of the run that follows."""

from __future__ import annotations

import asyncio
import copy
import csv
import io
from collections import Counter
from collections.abc import Callable
from typing import Any

from app.privacy.service import forget
from app.resources import create_resources
from tests.consent.conftest import Scene
from tests.e2e.conftest import World
from tests.e2e.harness import auth
from tests.e2e.test_privacy import rows_mentioning
from tests.e2e.test_webhooks import address

Make = Callable[..., Any]
WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Every category a run counts; the preview must predict each.
CATEGORIES = (
    "onoffice_newsletter_total", "synced", "created", "updated", "unchanged", "duplicates",
    "invalid_emails", "missing_emails", "rejected", "opted_out", "pending_optin", "bounced",
    "archived", "unsubscribed", "held_unsubscribes",
)  # fmt: skip


def book() -> list[dict[str, Any]]:
    return [
        address(1, "anna@example.de"),  # already subscribed in the list: unchanged or updated
        address(2, "bernd@example.de"),  # new: created
        address(3, "ANNA@example.de "),  # duplicate of 1
        address(4, "kein email"),  # invalid
        address(5, ""),  # missing
        address(6, "carla@example.de"),  # unsubscribed at Mailchimp: written back as No
        address(7, "dora@example.de"),  # archived at Mailchimp: not re-added
        address(8, "emil@example.de"),  # cleaned: bounced (activity only)
        address(9, "franz@example.de"),  # opted out in onOffice on address 10
        address(10, "franz@example.de", newsletter="0"),
    ]


def mailchimp_writes(world: World) -> Counter[str]:
    counts = world.mailchimp.request_counts
    return Counter({k: v for k, v in counts.items() if k.split(" ", 1)[0] in WRITES})


def onoffice_writes(world: World) -> Counter[str]:
    counts = world.onoffice.request_counts
    return Counter({k: v for k, v in counts.items() if not k.startswith(("read", "get"))})


def snapshot(world: World, scene: Scene) -> dict[str, Any]:
    members = world.mailchimp.lists[scene.list_id].members
    return {
        "members": {
            m.email: (m.status, dict(m.merge_fields), m.last_changed) for m in members.values()
        },
        "addresses": copy.deepcopy({i: a.to_dict() for i, a in world.onoffice.addresses.items()}),
        "activities": len(world.onoffice.activities),
        "mailchimp_writes": mailchimp_writes(world),
        "onoffice_writes": onoffice_writes(world),
    }


async def preview(scene: Scene, **body: Any) -> dict[str, Any]:
    started = await scene.api("POST", "/api/v1/syncs", json={"dry_run": True, **body})
    assert started.status_code == 202, started.text
    answer = started.json()
    assert answer["dry_run"] is True and answer["preview"] == f"/api/v1/previews/{answer['id']}"
    for _ in range(300):
        found = (await scene.api("GET", answer["preview"])).json()
        if found["status"] in ("completed", "failed"):
            return dict(found)
        await asyncio.sleep(0.1)
    raise AssertionError("the preview did not finish")


async def items(scene: Scene, preview_id: int, **query: Any) -> list[dict[str, Any]]:
    response = await scene.api("GET", f"/api/v1/previews/{preview_id}/items", params=query)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def seeded_scene(world: World, scenes: Make) -> Scene:
    world.onoffice.seed(book())
    scene: Scene = await scenes("mailchimp", sync=False)
    mailchimp = world.mailchimp
    mailchimp.seed_member(scene.list_id, "anna@example.de")
    for email, action in (("carla", "admin_unsubscribe"), ("dora", "archive"), ("emil", "clean")):
        mailchimp.seed_member(scene.list_id, f"{email}@example.de")
        mailchimp.member_action(scene.list_id, f"{email}@example.de", action)
    return scene


async def test_a_preview_writes_nothing_and_predicts_the_run(world: World, scenes: Make) -> None:
    scene = await seeded_scene(world, scenes)
    before = snapshot(world, scene)
    found = await preview(scene)
    assert found["status"] == "completed", found
    # Nothing was written on either side: no write request, the same state.
    assert snapshot(world, scene) == before
    # No run was made, and the status still offers the first sync.
    assert (await scene.api("GET", "/api/v1/syncs")).json() == []
    counts = found["counts"]
    assert counts["created"] == 1 and counts["duplicates"] == 1 and counts["archived"] == 1
    assert counts["written_back"] == 3, counts  # carla No, franz's address 9 No, emil activity
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert {k: counts[k] for k in CATEGORIES} == {k: run["counts"][k] for k in CATEGORIES}
    assert counts["onoffice_reported_total"] == run["counts"]["onoffice_reported_total"]


async def test_the_list_says_what_would_happen_per_address(world: World, scenes: Make) -> None:
    scene = await seeded_scene(world, scenes)
    found = await preview(scene)
    listed = {i["address_id"]: i for i in await items(scene, found["id"], limit=100)}
    assert {a: i["outcome"] for a, i in listed.items()} == {
        1: "updated", 2: "created", 3: "duplicate", 4: "invalid_email", 5: "missing_email",
        6: "opted_out", 7: "archived", 8: "bounced", 9: "opted_out",
    }  # fmt: skip
    assert listed[6]["onoffice_write"] == "no" and listed[9]["onoffice_write"] == "no"
    assert listed[8]["onoffice_write"] == "activity" and listed[7]["onoffice_write"] is None
    assert listed[3]["reason"] and listed[6]["outcome_text"]
    written = await items(scene, found["id"], outcome="written_back")
    assert sorted(i["address_id"] for i in written) == [6, 8, 9]
    assert [i["address_id"] for i in await items(scene, found["id"], q="bernd")] == [2]
    # Paged: two at a time, by cursor.
    response = await scene.api("GET", f"/api/v1/previews/{found['id']}/items", params={"limit": 2})
    page = response.json()
    assert page["total"] == 9 and len(page["items"]) == 2 and page["next_cursor"]
    # CSV: every address, the German texts with Accept-Language: de.
    response = await scene.http.get(
        f"{scene.connector.url}/api/v1/previews/{found['id']}/items",
        params={"format": "csv"},
        headers=auth(scene.token) | {"Accept-Language": "de"},
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 9 and {r["outcome"] for r in rows} >= {"created", "duplicate"}
    by_address = {r["address_id"]: r for r in rows}
    assert by_address["6"]["onoffice_write"] == "no" and by_address["6"]["onoffice_write_text"]


async def test_a_second_preview_after_the_run_predicts_nothing_to_send(
    world: World, scenes: Make
) -> None:
    scene = await seeded_scene(world, scenes)
    await scene.sync()
    found = await preview(scene)
    counts = found["counts"]
    assert counts["created"] == counts["updated"] == 0 and counts["unchanged"] == 2, counts
    again = await scene.sync()
    assert {k: counts[k] for k in CATEGORIES} == {k: again["counts"][k] for k in CATEGORIES}


async def test_a_preview_is_refused_while_a_run_is_active(world: World, scenes: Make) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, 3)])
    scene: Scene = await scenes("mailchimp", sync=False)
    world.onoffice.latency = 2.0  # the run stays active while the preview is asked for
    started = await scene.api("POST", "/api/v1/syncs")
    assert started.status_code == 202
    response = await scene.api("POST", "/api/v1/syncs", json={"dry_run": True})
    assert response.status_code == 409, response.text
    world.onoffice.latency = 0.0


async def test_forget_erases_the_person_from_the_preview(world: World, scenes: Make) -> None:
    scene = await seeded_scene(world, scenes)
    found = await preview(scene)
    assert [i["address_id"] for i in await items(scene, found["id"], q="bernd")] == [2]
    settings = scene.connector.settings
    mentions = await rows_mentioning(settings.DATABASE_URL, "bernd@example.de")
    assert mentions.get("preview_item") == 1, mentions
    resources = await create_resources(settings)
    try:
        await forget(resources, "C1", "Bernd@Example.de", delete_at_provider=False)
    finally:
        await resources.aclose()
    assert await items(scene, found["id"], q="bernd") == []
    assert "preview_item" not in await rows_mentioning(settings.DATABASE_URL, "bernd@example.de")
    assert len(await items(scene, found["id"], limit=100)) == 8  # the others stay
