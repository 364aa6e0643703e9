"""A batch the provider refuses as a whole: each contact of it is listed as rejected by code,
the provider's own message shown only as the labelled original (issue 23, item 4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulators.mailchimp import Fault
from tests.consent.conftest import Scene, address
from tests.e2e.conftest import World

Make = Callable[..., Any]


async def test_a_refused_batch_lists_each_contact_by_code(world: World, scenes: Make) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, 4)])
    scene: Scene = await scenes("mailchimp", sync=False)
    # The batch subscribe (the first POST to the list during the run) is refused for good.
    fault = Fault(status=400, method="POST", path_contains=f"/lists/{scene.list_id}")
    world.mailchimp.faults.append(fault)
    run = await scene.sync()
    assert run["status"] == "completed", run
    assert run["counts"]["rejected"] == 3, run["counts"]
    problems = await scene.problems(run["id"])
    assert {p["reason_code"] for p in problems} == {"provider_invalid_request"}
    assert {p["reason"] for p in problems} == {"The newsletter service refused the contact's data."}
    assert all(p["detail"].startswith("Original message of Mailchimp: ") for p in problems)
