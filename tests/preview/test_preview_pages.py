"""A preview over several onOffice pages keeps only the emails it claimed from one page to the
next: a duplicate whose first address was on an earlier page is still a duplicate, and an
address read again on a later page (the pages shift) is counted once, as the run counts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from app.config import Settings
from tests.consent.conftest import Scene, connect_scene
from tests.e2e.conftest import World
from tests.e2e.test_webhooks import address
from tests.preview.test_preview import CATEGORIES, items, preview

Make = Callable[..., Any]


async def test_duplicates_across_pages_are_found_with_only_the_claimed_emails_kept(
    world: World, scenes: Make
) -> None:
    book = [address(i, f"p{i}@example.de") for i in range(1, 1201)]
    # Later pages (500 addresses a page) repeat emails claimed on the first and second.
    book += [address(1201, "P1@example.de"), address(1202, "p700@example.de ")]
    book += [address(1203, "p1@example.de", newsletter="0")]  # p1 said No on another address
    world.onoffice.seed(book)
    scene: Scene = await scenes("mailchimp", sync=False)
    found = await preview(scene)
    counts = found["counts"]
    assert counts["duplicates"] == 2 and counts["opted_out"] == 1, counts
    assert counts["created"] == 1199 and counts["onoffice_newsletter_total"] == 1202, counts
    listed = {i["address_id"]: i["outcome"] for i in await items(scene, found["id"], limit=2000)}
    assert (listed[1201], listed[1202], listed[1]) == ("duplicate", "duplicate", "opted_out")
    run = await scene.sync()
    assert {k: counts[k] for k in CATEGORIES} == {k: run["counts"][k] for k in CATEGORIES}


async def test_a_preview_longer_than_a_job_may_take_fails_instead_of_running_for_good(
    world: World, consent_settings: Settings, http: httpx.AsyncClient
) -> None:
    """The worker cancels a job after WORKER_JOB_TIMEOUT_S: the preview ends before that, as
    failed with the reason in words, instead of staying `running`."""
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, 1201)])
    settings = consent_settings.model_copy(update={"WORKER_JOB_TIMEOUT_S": 5})
    scene = await connect_scene(world, settings, http, "mailchimp", sync=False)
    try:
        world.onoffice.latency = 1.5  # three pages and their persons: longer than 3 s
        found = await preview(scene)
        assert found["status"] == "failed", found
        assert "WORKER_JOB_TIMEOUT_S" in found["error"] and "3 s" in found["error"]
        assert found["counts"] is None
    finally:
        world.onoffice.latency = 0.0
        scene.connector.stop()
