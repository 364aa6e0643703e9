"""Found by the consent model (issue #17, I1, a disconnect and reconnect in the CI run with the
bounce and removal families): the first poll of a connection only set its cursor, so an agent's
"No" made after the connection's full sync and before that poll never reached the provider by
polling. The first poll now starts where the last completed full sync began. Over HTTP against
the emulators; fails on ea50555."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.consent.conftest import Scene, address
from tests.e2e.conftest import World

Make = Callable[..., Any]


async def test_the_first_poll_after_a_full_sync_pushes_what_changed_since_it_began(
    world: World, scenes: Make
) -> None:
    world.onoffice.seed([address(1, "p1@example.de"), address(2, "p2@example.de")])
    scene: Scene = await scenes("mailchimp")  # connected and synced; never polled
    world.onoffice.seed([address(1, "p1@example.de", newsletter="0")], replace=False)
    await scene.poll()
    await scene.settled()
    assert scene.member("p1@example.de").status == "unsubscribed"  # type: ignore[union-attr]
    assert scene.member("p2@example.de").status == "subscribed"  # type: ignore[union-attr]
