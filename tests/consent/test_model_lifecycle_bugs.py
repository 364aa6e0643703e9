"""Defects the consent model (tests/consent/test_model_product.py) found in the families
`email_change`, `switch` and `burst` (issue #17), each as a named test over HTTP against the
emulators."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from emulators.mailchimp import DEFAULT_API_KEY, subscriber_hash
from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.e2e.conftest import World

Make = Callable[..., Any]


def seed(world: World, n: int) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, n + 1)])


async def reconnect(scene: Scene) -> None:
    """Disconnect, connect the same list again (a new connection) and run the full sync."""
    gone = await scene.api("DELETE", "/api/v1/connection")
    assert gone.status_code == 204, gone.text
    saved = await scene.api(
        "PUT", "/api/v1/connection", json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY}
    )
    assert saved.status_code == 200, saved.text
    run = await scene.sync()
    assert run["status"] == "completed", run


async def test_first_poll_after_a_reconnect_pushes_an_opt_out_made_after_the_full_sync(
    world: World, scenes: Make
) -> None:
    """The first poll of a connection only set its cursor ("the full sync brought everything
    before it"), so a No saved after the reconnect's full sync and before that poll was not
    pushed by it: the person stayed subscribed until a later poll's overlap found it."""
    seed(world, 2)
    scene: Scene = await scenes("mailchimp")
    await reconnect(scene)
    emu = world.onoffice.addresses[1]
    emu.newsletter = "0"
    world.onoffice.touch(emu)
    await scene.poll()
    member = scene.member("p1@example.de")
    assert member is not None and member.status == "unsubscribed", member
    assert scene.member("p2@example.de").status == "subscribed"  # type: ignore[union-attr]


async def test_archive_all_stays_held_when_a_straggler_arrives_after_the_window(
    world: World, scenes: Make
) -> None:
    """Five archives at once (the threshold) and a sixth one more than the window later, all
    seen together by a drain busy with an earlier event (slow onOffice): the burst check took
    the span of all six (beyond the window) and applied every one as a single archive ("not
    specified" on six addresses). Five within the window are a burst, the straggler joins it."""
    seed(world, 7)
    scene: Scene = await scenes("mailchimp")
    window = scene.connector.settings.ARCHIVE_BURST_WINDOW_S
    world.onoffice.latency = 2.0  # the drain's first batch takes several seconds
    # Made at Mailchimp before its webhook (events are confirmed against the provider's state).
    world.mailchimp.member_action(scene.list_id, "p7@example.de", "unsubscribe")
    await scene.mailchimp_event("unsubscribe", "p7@example.de", fired_at(), action="unsub")
    await asyncio.sleep(0.2)
    for i in range(1, 6):
        world.mailchimp.member_action(scene.list_id, f"p{i}@example.de", "archive")
    await asyncio.gather(
        *(
            scene.mailchimp_event("unsubscribe", f"p{i}@example.de", fired_at(), action="archive")
            for i in range(1, 6)
        )
    )
    await asyncio.sleep(window + 0.3)
    world.mailchimp.member_action(scene.list_id, "p6@example.de", "archive")
    await scene.mailchimp_event("unsubscribe", "p6@example.de", fired_at(), action="archive")

    async def held() -> bool:
        return int((await scene.status())["pending"]["held_inbound_events"]) == 6

    await eventually(held, "the burst held", wait_s=60)
    world.onoffice.latency = 0.0
    await scene.settled()
    assert [scene.newsletter(i) for i in range(1, 7)] == ["1"] * 6
    assert scene.newsletter(7) == "0"


async def switch(scene: Scene, provider: str) -> None:
    """Save the connection with another provider (its list named "onoffice"), then sync."""
    key = DEFAULT_API_KEY if provider == "mailchimp" else "test-key-de"
    saved = await scene.api(
        "PUT", "/api/v1/connection", json={"provider": provider, "api_key": key}
    )
    assert saved.status_code == 200, saved.text
    run = await scene.sync()
    assert run["status"] == "completed", run


async def test_back_at_a_list_the_connector_knows_whom_it_subscribed_there(
    world: World, scenes: Make
) -> None:
    """Switch A -> B -> A (family `switch`): the connector subscribed Anna at Mailchimp (A);
    at Brevo (B) she said No in onOffice (Brevo unsubscribed her). Back at A she stayed
    subscribed: the first switch had wiped A's ledger, and a full sync reads only newsletter-Yes
    addresses, so nothing told the run that the connector had subscribed her at A. Each list's
    ledger is now kept across switches (parked while another list is connected)."""
    seed(world, 2)
    scene: Scene = await scenes("mailchimp")
    list_a = scene.list_id
    await switch(scene, "brevo")
    assert "p1@example.de" in world.brevo.accounts["test-key-de"].contacts
    emu = world.onoffice.addresses[1]
    emu.newsletter = "0"
    world.onoffice.touch(emu)
    await scene.poll()
    await switch(scene, "mailchimp")
    members = world.mailchimp.lists[list_a].members
    anna, bob = (members[subscriber_hash(f"p{i}@example.de")] for i in (1, 2))
    assert anna.status == "unsubscribed", anna
    assert bob.status == "subscribed", bob


async def test_a_reconnect_in_between_keeps_what_the_connector_did_at_a_list(
    world: World, scenes: Make
) -> None:
    """The model's random run (families switch and disconnect): A -> B, the person opts out
    (a No in onOffice), disconnect and connect B again, back to A: she stayed subscribed at A,
    because the disconnect deleted the connection with the ledger parked for A. Parked ledgers
    belong to the customer and group, and a disconnect parks the current one as well."""
    seed(world, 2)
    scene: Scene = await scenes("mailchimp")
    list_a = scene.list_id
    await switch(scene, "brevo")
    emu = world.onoffice.addresses[1]
    emu.newsletter = "0"
    world.onoffice.touch(emu)
    await scene.poll()
    gone = await scene.api("DELETE", "/api/v1/connection")
    assert gone.status_code == 204, gone.text
    await switch(scene, "brevo")
    await switch(scene, "mailchimp")
    members = world.mailchimp.lists[list_a].members
    anna, bob = (members[subscriber_hash(f"p{i}@example.de")] for i in (1, 2))
    assert anna.status == "unsubscribed", anna
    assert bob.status == "subscribed", bob
