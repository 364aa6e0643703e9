"""Story 4 (issue #17, review N3): a full sync over an address book that changes while it is
read. Offset paging over the live "Newsletter = Yes" filter skips an address whenever an
earlier one leaves the filter mid-run; the end of the run must not take that for "left
onOffice". Over HTTP, embedded jobs, the emulators (the onOffice emulator's read hooks play the
agent who saves an address between two page reads)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.config import Settings
from emulators.onoffice.state import ReadHook
from tests.consent.conftest import Scene, address, eventually
from tests.e2e.conftest import World
from tests.e2e.harness import signed_query, wait_for_run

Make = Callable[..., Any]


@pytest.fixture
def consent_settings(e2e_settings: Settings) -> Settings:
    # Two addresses per page, read one page at a time: the shift is deterministic.
    return e2e_settings.model_copy(update={"ONOFFICE_PAGE_SIZE": 2, "ONOFFICE_READ_CONCURRENCY": 1})


async def address_saved(scene: Scene, record_id: int) -> httpx.Response:
    """onOffice's signed "address saved" webhook for one address of the scene's customer."""
    params = {
        "customerWebId": "C1",
        "apiClaim": "claim-C1",
        "userId": "17",
        "timestamp": str(int(time.time())),
        "recordId": str(record_id),
    }
    query = signed_query(scene.connector.url, "/onoffice/webhook", params)
    return await scene.http.get(f"{scene.connector.url}/onoffice/webhook", params=query)


def book(n: int) -> list[dict[str, Any]]:
    return [address(i, f"p{i}@example.de") for i in range(1, n + 1)]


async def test_story4_an_address_skipped_by_offset_paging_is_synced_not_unsubscribed(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed(book(6))
    scene: Scene = await scenes("mailchimp")
    assert all(scene.member(f"p{i}@example.de").status == "subscribed" for i in range(1, 7))  # type: ignore[union-attr]
    # p3 gets a new first name (the run has something to send for it) ...
    world.onoffice.seed([address(3, "p3@example.de", Vorname="Neu")], replace=False)
    # ... and while the run pages, the agent sets p1 to No after the first page: the page at
    # offset 2 then starts at p4, and p3 (Yes all along) is on no page.
    world.onoffice.read_hooks.append(
        ReadHook(listoffset=2, addresses=[address(1, "p1@example.de", newsletter="0")])
    )
    await scene.poll()  # the first poll sets the watermark
    run = await scene.sync()
    assert world.onoffice.read_hooks_fired == 1
    assert run["status"] == "completed", run
    p3 = scene.member("p3@example.de")
    assert p3 is not None and p3.status == "subscribed"  # not unsubscribed as "left onOffice"
    assert p3.merge_fields["FNAME"] == "Neu"  # and synced by this run
    # Nobody is unsubscribed as "left onOffice": p1 was read (as Yes) before it changed ...
    assert run["counts"]["unsubscribed"] == 0
    assert all(scene.member(f"p{i}@example.de").status == "subscribed" for i in range(1, 7))  # type: ignore[union-attr]
    problems = await scene.problems(run["id"])
    assert [p for p in problems if p["address_id"] == 3] == []
    # ... and its No reaches Mailchimp through the incremental push, as any edit does.
    await scene.poll()
    assert scene.member("p1@example.de").status == "unsubscribed"  # type: ignore[union-attr]


async def test_story4_a_contact_the_push_subscribed_during_the_run_is_not_unsubscribed(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([*book(6), address(7, "late@example.de", newsletter="0")])
    scene: Scene = await scenes("mailchimp")
    assert scene.member("late@example.de") is None
    # While the run reads its last page, the agent sets address 7 to Yes (after that page's
    # records were taken: the run never reads it) and the answer takes a few seconds.
    world.onoffice.read_hooks.append(
        ReadHook(
            listoffset=4,
            addresses=[address(7, "late@example.de")],
            when="after",
            hold_seconds=4.0,
        )
    )
    started = await scene.api("POST", "/api/v1/syncs")
    assert started.status_code == 202, started.text
    await eventually(lambda: world.onoffice.read_hooks_fired == 1, "the run's last page")
    # onOffice's "address saved" webhook: the incremental push subscribes address 7 while the
    # run goes on.
    saved = await address_saved(scene, 7)
    assert saved.status_code == 200, saved.text
    await eventually(
        lambda: getattr(scene.member("late@example.de"), "status", None) == "subscribed",
        "the push of address 7",
    )
    assert world.onoffice.read_hooks == []  # the run is still waiting for its last page
    run = await wait_for_run(scene.http, scene.connector.url, scene.token, started.json()["id"])
    assert run["status"] == "completed", run
    await asyncio.sleep(0.2)
    assert scene.member("late@example.de").status == "subscribed"  # type: ignore[union-attr]
    assert run["counts"]["unsubscribed"] == 0


async def test_story4_held_unsubscribes_spare_an_address_that_is_yes_again_at_approval(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed(book(10))
    scene: Scene = await scenes("mailchimp")
    # Half the list says No at once: the safety valve holds the five unsubscribes back.
    world.onoffice.seed(
        [address(i, f"p{i}@example.de", newsletter="0") for i in range(1, 6)], replace=False
    )
    run = await scene.sync()
    assert run["counts"]["held_unsubscribes"] == 5 and run["counts"]["unsubscribed"] == 0, run
    # Before the user approves, the agent sets p5 back to Yes.
    world.onoffice.seed([address(5, "p5@example.de")], replace=False)
    approved = await scene.api("POST", f"/api/v1/syncs/{run['id']}/approve-unsubscribes")
    assert approved.status_code == 202, approved.text

    async def done() -> bool:
        body = (await scene.api("GET", f"/api/v1/syncs/{run['id']}")).json()
        return int(body["counts"]["held_unsubscribes"]) == 0

    await eventually(done, "the approval")
    status = {i: scene.member(f"p{i}@example.de").status for i in range(1, 11)}  # type: ignore[union-attr]
    assert [i for i, s in status.items() if s == "unsubscribed"] == [1, 2, 3, 4]


async def test_story4_brevo_does_not_blacklist_an_address_skipped_by_offset_paging(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed(book(6))
    scene: Scene = await scenes("brevo")
    world.onoffice.read_hooks.append(
        ReadHook(listoffset=2, addresses=[address(1, "p1@example.de", newsletter="0")])
    )
    run = await scene.sync()
    assert world.onoffice.read_hooks_fired == 1
    assert run["status"] == "completed", run
    assert run["counts"]["unsubscribed"] == 0
    p3 = scene.brevo_contact("p3@example.de")
    assert p3.blacklisted is False and int(scene.list_id) in p3.list_ids
