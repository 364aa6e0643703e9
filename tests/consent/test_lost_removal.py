"""Found by the consent model's `removal` family (issue #17, I1): a single archive at Mailchimp
whose webhook is lost was undone by the next incremental push of that person, since the
upsert (PUT members/{hash}, `status_if_new` only) re-adds an archived member. Over HTTP
against the emulators; fails on ea50555."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.consent.conftest import Scene, address
from tests.e2e.conftest import World

Make = Callable[..., Any]


def member_time(delta_s: float) -> str:
    """A member's `last_changed`, `delta_s` from now."""
    return datetime.fromtimestamp(time.time() + delta_s, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


async def archived_emails(scene: Scene) -> list[str]:
    response = await scene.api("GET", "/api/v1/connection/archived")
    assert response.status_code == 200, response.text
    return sorted(item["email"] for item in response.json()["items"])


async def test_an_archive_whose_webhook_is_lost_is_not_undone_by_the_next_push(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([address(1, "p1@example.de"), address(2, "p2@example.de")])
    scene: Scene = await scenes("mailchimp")
    await scene.poll()  # the first poll sets the watermark
    # p1 is archived at Mailchimp half a minute ago; its webhook never arrives.
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "archive", at=member_time(-30))
    # The agent edits p1's name (Newsletter stays Yes): the push of that person.
    world.onoffice.seed([address(1, "p1@example.de", Name="Neumann")], replace=False)
    await scene.poll()
    await scene.settled()
    member = scene.member("p1@example.de")
    assert member is not None and member.status == "archived"  # ea50555: "subscribed"
    # Not consent: nothing written to onOffice; listed as archived at the provider.
    assert scene.newsletter(1) == "1" and not scene.activities(1)
    assert await archived_emails(scene) == ["p1@example.de"]
    # A full sync keeps it archived too.
    run = await scene.sync()
    assert run["counts"]["archived"] == 1, run["counts"]
    assert scene.member("p1@example.de").status == "archived"  # type: ignore[union-attr]
    # A fresh consent in onOffice after the archive (No, then Yes) subscribes it again.
    world.onoffice.seed([address(1, "p1@example.de", newsletter="0")], replace=False)
    await scene.poll()
    assert scene.member("p1@example.de").status == "archived"  # type: ignore[union-attr]
    world.onoffice.seed([address(1, "p1@example.de")], replace=False)
    await scene.poll()
    await scene.settled()
    assert scene.member("p1@example.de").status == "subscribed"  # type: ignore[union-attr]
    assert await archived_emails(scene) == []
    assert scene.member("p2@example.de").status == "subscribed"  # type: ignore[union-attr]
