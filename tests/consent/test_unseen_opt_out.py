"""Found by the consent model's `bounce` family (issue #17, I2): a provider unsubscribe whose
webhook was lost did not reach an onOffice address set to "not specified". The full sync reads
only the newsletter-Yes addresses, so a person with none (here: the agent cleared the field
after a bounce) never had the unsubscribe it read from the list written back. Over HTTP
against the emulators; fails on ea50555."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.consent.conftest import Scene, address, fired_at
from tests.e2e.conftest import World

Make = Callable[..., Any]


async def test_an_unsubscribe_after_a_bounce_with_its_webhook_lost_reaches_not_specified(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed(
        [address(1, "p1@example.de"), address(2, "p1@example.de"), address(3, "p3@example.de")]
    )
    scene: Scene = await scenes("mailchimp")
    await scene.poll()  # the first poll sets the watermark
    # p1 bounces (the webhook arrives): onOffice keeps Yes.
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "clean")
    await scene.mailchimp_event("cleaned", "p1@example.de", fired_at(), reason="hard")
    await scene.settled()
    assert (scene.newsletter(1), scene.newsletter(2)) == ("1", "1")
    # The agent clears the field on address 1 and sets No on address 2.
    world.onoffice.seed(
        [address(1, "p1@example.de", newsletter="4"), address(2, "p1@example.de", newsletter="0")],
        replace=False,
    )
    await scene.poll()
    await scene.settled()
    await asyncio.sleep(6)  # clearly later (ties go to the opt-out anyway)
    # An admin unsubscribes p1 at Mailchimp; the webhook is lost.
    world.mailchimp.member_action(scene.list_id, "p1@example.de", "admin_unsubscribe")
    before = (len(scene.activities(1)), len(scene.activities(3)))
    run = await scene.sync()
    assert run["status"] == "completed", run
    await scene.settled()
    # The unsubscribe the run read reaches onOffice: No over "not specified" (ea50555: "4"),
    # the No stays, with the activity; nobody else is touched.
    assert (scene.newsletter(1), scene.newsletter(2)) == ("0", "0")
    assert (len(scene.activities(1)), len(scene.activities(3))) == (before[0] + 1, before[1])
    assert scene.newsletter(3) == "1"
    # The next run finds nothing new to write back.
    activities = len(world.onoffice.activities)
    await scene.sync()
    await scene.settled()
    assert len(world.onoffice.activities) == activities
