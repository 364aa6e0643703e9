"""Decisions with names: each list (held unsubscribes, held bursts, contacts archived at the
provider, failed events) shows the people it holds (paged, searchable, CSV), a decision for a
selection touches exactly those, "all" the rest, and each decided person's history names the
user who decided."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest

from app.config import Settings
from emulators.onoffice.state import Fault
from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.e2e.conftest import World
from tests.e2e.test_webhooks import at_mailchimp

Make = Callable[..., Any]


@pytest.fixture
def consent_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(
        update={
            "ARCHIVE_BURST_WINDOW_S": 3.0,
            "ARCHIVE_BURST_THRESHOLD": 5,
            "INBOUND_EVENT_MAX_ATTEMPTS": 1,  # a refused write parks its event at once
        }
    )


def seed(world: World, n: int, **kw: Any) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de", **kw) for i in range(1, n + 1)])


def emails(*numbers: int) -> list[str]:
    return [f"p{i}@example.de" for i in numbers]


async def listed(scene: Scene, kind: str, **params: Any) -> dict[str, Any]:
    answer = await scene.api("GET", f"/api/v1/decisions/{kind}", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def decide(scene: Scene, kind: str, action: str, chosen: list[str] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action}
    if chosen is not None:
        body["emails"] = chosen
    answer = await scene.api("POST", f"/api/v1/decisions/{kind}", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def decisions_of(scene: Scene, email: str) -> list[tuple[str, str | None, str | None]]:
    history = (await scene.api("GET", "/api/v1/contacts", params={"email": email})).json()
    return [
        (h["value"], h["note"], h["source_ref"])
        for h in history["history"]
        if h["kind"] == "decision"
    ]


async def user_of(scene: Scene) -> str:
    return str((await scene.api("GET", "/api/v1/session")).json()["user_id"])


class TestHeldUnsubscribes:
    async def test_a_selection_is_approved_dismissed_and_then_the_rest(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 20)
        scene: Scene = await scenes("mailchimp")
        user = await user_of(scene)
        world.onoffice.seed(
            [address(i, f"p{i}@example.de", newsletter="0") for i in range(1, 11)], replace=False
        )
        run = await scene.sync()
        assert run["counts"]["held_unsubscribes"] == 10
        page = await listed(scene, "held_unsubscribes", limit=4)
        assert page["total"] == 10 and len(page["items"]) == 4
        assert page["actions"] == ["apply", "dismiss"]
        assert page["items"][0]["reason_code"] == "held_unsubscribe"
        found = await listed(scene, "held_unsubscribes", q="p1")
        assert {i["email"] for i in found["items"]} == set(emails(1, 10))
        # Approve two: exactly those are unsubscribed.
        result = await decide(scene, "held_unsubscribes", "apply", emails(1, 2))
        assert result["decided"] == emails(1, 2)
        await eventually(
            lambda: all(scene.member(e).status == "unsubscribed" for e in emails(1, 2)),  # type: ignore[union-attr]
            "the approved two unsubscribed",
        )
        assert all(scene.member(e).status == "subscribed" for e in emails(*range(3, 11)))  # type: ignore[union-attr]
        assert (await listed(scene, "held_unsubscribes"))["total"] == 8
        assert await decisions_of(scene, "p1@example.de") == [("apply", "held_unsubscribes", user)]
        # Dismiss one: it stays subscribed and leaves the list.
        await decide(scene, "held_unsubscribes", "dismiss", emails(3))
        assert (await listed(scene, "held_unsubscribes"))["total"] == 7
        assert await decisions_of(scene, "p3@example.de") == [
            ("dismiss", "held_unsubscribes", user)
        ]
        # Then all the rest, as CSV first.
        exported = await scene.api(
            "GET", "/api/v1/decisions/held_unsubscribes", params={"format": "csv"}
        )
        rows = list(csv.reader(io.StringIO(exported.text)))
        assert rows[0][:2] == ["email", "address_id"] and len(rows) == 8
        result = await decide(scene, "held_unsubscribes", "apply", None)
        assert result["decided"] == sorted(emails(*range(4, 11)))
        await eventually(
            lambda: all(scene.member(e).status == "unsubscribed" for e in emails(*range(4, 11))),  # type: ignore[union-attr]
            "the rest unsubscribed",
        )
        assert scene.member("p3@example.de").status == "subscribed"  # type: ignore[union-attr]

        async def recorded() -> bool:
            answer = await scene.api("GET", "/api/v1/contacts", params={"email": emails(5)[0]})
            entries = answer.json()["history"]
            pairs = [(h["value"], h["note"]) for h in entries if h["kind"] == "action"]
            return ("unsubscribe", "approved") in pairs

        await eventually(recorded, "the approved unsubscribe in the history")

        async def cleared() -> bool:
            runs = (await scene.api("GET", "/api/v1/syncs")).json()
            return bool(runs[0]["counts"]["held_unsubscribes"] == 0)

        await eventually(cleared, "nothing held any more")


class TestHeldBursts:
    async def test_a_selection_is_applied_another_dismissed(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 8)
        scene: Scene = await scenes("mailchimp")
        user = await user_of(scene)
        for i in range(1, 9):
            await scene.mailchimp_event(
                "unsubscribe", f"p{i}@example.de", fired_at(), action="archive"
            )

        async def held() -> bool:
            return (await listed(scene, "held_bursts"))["total"] == 8

        await eventually(held, "the burst held")
        for i in range(1, 4):
            world.mailchimp.member_action(scene.list_id, f"p{i}@example.de", "archive")
        dismissed = await decide(scene, "held_bursts", "dismiss", emails(7, 8))
        assert dismissed["decided"] == emails(7, 8) and dismissed["events"] == 2
        applied = await decide(scene, "held_bursts", "apply", emails(1, 2, 3))
        assert applied["events"] == 3
        await scene.settled()
        assert [scene.newsletter(i) for i in range(1, 9)] == ["4"] * 3 + ["1"] * 5
        left = await listed(scene, "held_bursts")
        assert sorted(i["email"] for i in left["items"]) == emails(4, 5, 6)
        assert await decisions_of(scene, "p1@example.de") == [("apply", "held_bursts", user)]
        assert await decisions_of(scene, "p8@example.de") == [("dismiss", "held_bursts", user)]
        # A kind's own actions only.
        wrong = await scene.api("POST", "/api/v1/decisions/held_bursts", json={"action": "restore"})
        assert wrong.status_code == 409


class TestArchived:
    async def test_a_selection_is_restored(self, world: World, scenes: Make) -> None:
        seed(world, 4)
        scene: Scene = await scenes("mailchimp")
        user = await user_of(scene)
        for i in (1, 2):
            at_mailchimp(world, scene.list_id, f"p{i}@example.de", "archive")
        run = await scene.sync(force=True)
        assert run["counts"]["archived"] == 2
        page = await listed(scene, "archived")
        assert sorted(i["email"] for i in page["items"]) == emails(1, 2)
        assert page["actions"] == ["restore"]
        assert (await listed(scene, "archived", q="2"))["total"] == 1
        result = await decide(scene, "archived", "restore", emails(2))
        assert result["decided"] == emails(2)
        assert scene.member("p2@example.de").status == "subscribed"  # type: ignore[union-attr]
        assert scene.member("p1@example.de").status == "archived"  # type: ignore[union-attr]
        assert await decisions_of(scene, "p2@example.de") == [("restore", "archived", user)]
        assert [i["email"] for i in (await listed(scene, "archived"))["items"]] == emails(1)
        # The older route records the decision the same way.
        old = await scene.api(
            "POST", "/api/v1/connection/archived/restore", json={"emails": emails(1)}
        )
        assert old.json()["restored"] == emails(1)
        assert await decisions_of(scene, "p1@example.de") == [("restore", "archived", user)]


class TestFailedEvents:
    async def test_failed_events_are_retried_or_dismissed(self, world: World, scenes: Make) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        user = await user_of(scene)
        for i in (1, 2):
            at_mailchimp(world, scene.list_id, f"p{i}@example.de", "unsubscribe")
        # onOffice refuses the writes: each event is parked as failed after its one try.
        world.onoffice.faults.append(Fault("inband", 4, errorcode=88, message="refused"))
        for i in (1, 2):
            await scene.mailchimp_event(
                "unsubscribe", f"p{i}@example.de", fired_at(), action="unsub"
            )

        async def failed() -> bool:
            return (await listed(scene, "failed_events"))["total"] == 2

        await eventually(failed, "the events parked as failed")
        world.onoffice.faults.clear()
        page = await listed(scene, "failed_events", lang="de")
        item = page["items"][0]
        assert item["reason_code"] == "failed_event" and item["original"]
        assert page["actions"] == ["retry", "dismiss"]
        await decide(scene, "failed_events", "retry", emails(1))
        await decide(scene, "failed_events", "dismiss", emails(2))
        await scene.settled()
        assert scene.newsletter(1) == "0" and scene.newsletter(2) == "1"
        assert (await listed(scene, "failed_events"))["total"] == 0
        assert await decisions_of(scene, "p1@example.de") == [("retry", "failed_events", user)]
        assert await decisions_of(scene, "p2@example.de") == [("dismiss", "failed_events", user)]
