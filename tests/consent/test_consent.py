"""Consent comes first: one situation a test, through HTTP against the emulators.

Each test is a case where an earlier version re-subscribed an opt-out, lost one, or let the
two sides drift apart (issue #8).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.e2e.conftest import World
from tests.e2e.test_webhooks import at_mailchimp

Make = Callable[..., Any]


def seed(world: World, n: int, **kw: Any) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de", **kw) for i in range(1, n + 1)])


class TestLostOptOuts:
    async def test_a_lost_mailchimp_unsubscribe_survives_a_forced_sync(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        # An admin unsubscribes p1 in Mailchimp; the webhook never arrives.
        world.mailchimp.member_action(scene.list_id, "p1@example.de", "admin_unsubscribe")
        run = await scene.sync(force=True)
        assert run["status"] == "completed", run
        assert run["counts"]["opted_out"] == 1 and run["counts"]["synced"] == 2
        assert run["counts"]["reconciled"] is True
        member = scene.member("p1@example.de")
        assert member is not None and member.status == "unsubscribed"
        # The two sides meet again: onOffice shows the opt-out, with an activity.
        await eventually(lambda: scene.newsletter(1) == "0", "onOffice No")
        assert any("abgemeldet" in a["note"] for a in scene.activities(1))
        problems = await scene.problems(run["id"])
        assert [(p["address_id"], p["kind"]) for p in problems] == [(1, "opted_out")]
        # Another forced run sends nothing for p1 and does not count it as stale.
        again = await scene.sync(force=True)
        assert again["counts"]["unsubscribed"] == 0 and again["counts"]["synced"] == 2
        assert scene.member("p1@example.de").status == "unsubscribed"  # type: ignore[union-attr]

    async def test_an_onoffice_edit_after_a_lost_unsubscribe_does_not_resubscribe(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 2)
        scene: Scene = await scenes("mailchimp")
        await scene.poll()  # the first poll sets the watermark
        world.mailchimp.member_action(scene.list_id, "p1@example.de", "admin_unsubscribe")
        # The agent edits the name; the connector has not heard of the opt-out.
        world.onoffice.seed([address(1, "p1@example.de", Name="Neumann")], replace=False)
        await scene.poll()
        member = scene.member("p1@example.de")
        assert member is not None and member.status == "unsubscribed"
        assert member.merge_fields.get("LNAME") == "Neumann"  # the edit itself arrived
        await eventually(lambda: scene.newsletter(1) == "0", "the opt-out written back")

    async def test_an_opt_out_while_the_sync_runs_is_not_undone_by_its_batch(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        world.onoffice.latency = 1.5  # onOffice answers slowly: the run is between its steps
        reads = "GET /3.0/lists/{list_id}/members"
        before = world.mailchimp.request_counts.get(reads, 0)
        started = await scene.api("POST", "/api/v1/syncs", json={"force": True})
        run_id = started.json()["id"]
        # The run has read the list (members, then archived members) and now reads onOffice.
        await eventually(
            lambda: world.mailchimp.request_counts.get(reads, 0) >= before + 2, "the list read"
        )
        # p2 unsubscribes after the list was read; the webhook is lost.
        world.mailchimp.member_action(scene.list_id, "p2@example.de", "admin_unsubscribe")
        from tests.e2e.harness import wait_for_run

        run = await wait_for_run(scene.http, scene.connector.url, scene.token, run_id)
        world.onoffice.latency = 0.0
        assert run["counts"]["opted_out"] == 1 and run["counts"]["synced"] == 2, run
        assert scene.member("p2@example.de").status == "unsubscribed"  # type: ignore[union-attr]

    async def test_a_lost_brevo_blacklist_survives_a_forced_sync(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 3)
        scene: Scene = await scenes("brevo")
        scene.world.brevo.contact_action(
            world.brevo.accounts[scene.key], "p2@example.de", "unsubscribe"
        )
        run = await scene.sync(force=True)
        assert run["counts"]["opted_out"] == 1, run
        assert scene.brevo_contact("p2@example.de").blacklisted is True
        await eventually(lambda: scene.newsletter(2) == "0", "onOffice No")

    async def test_a_brevo_list_unsubscription_is_an_opt_out(
        self, world: World, scenes: Make
    ) -> None:
        # Accounts with "unsubscription per list" record it in listUnsubscribed instead of
        # blacklisting the person: the connector reads both.
        seed(world, 2)
        scene: Scene = await scenes("brevo")
        world.brevo.contact_action(
            world.brevo.accounts[scene.key],
            "p1@example.de",
            "unsubscribe_list",
            list_id=int(scene.list_id),
        )
        run = await scene.sync(force=True)
        assert run["counts"]["opted_out"] == 1 and run["counts"]["synced"] == 1, run
        await eventually(lambda: scene.newsletter(1) == "0", "onOffice No")

    async def test_a_first_sync_into_an_existing_audience_keeps_its_opt_outs(
        self, world: World, scenes: Make
    ) -> None:
        lst = world.mailchimp.create_list("onoffice")
        for email, status in [
            ("p1@example.de", "unsubscribed"),
            ("p2@example.de", "pending"),
            ("p3@example.de", "cleaned"),
            ("p4@example.de", "subscribed"),
        ]:
            world.mailchimp.seed_member(
                lst.id, email, status=status, self_unsubscribed=status == "unsubscribed"
            )
        seed(world, 5)
        scene: Scene = await scenes("mailchimp", sync=False)
        assert scene.list_id == lst.id
        run = await scene.sync(force=True)
        counts = run["counts"]
        assert (counts["opted_out"], counts["pending_optin"], counts["bounced"]) == (1, 1, 1)
        assert counts["synced"] == 2 and counts["reconciled"] is True, counts
        emails = [f"p{i}@example.de" for i in range(1, 6)]
        states = {e: getattr(scene.member(e), "status", None) for e in emails}
        assert states == {
            "p1@example.de": "unsubscribed",
            "p2@example.de": "pending",
            "p3@example.de": "cleaned",
            "p4@example.de": "subscribed",
            "p5@example.de": "subscribed",
        }
        await eventually(lambda: scene.newsletter(1) == "0", "written back")
        # A bounce is not consent (issue #17 story 9): onOffice keeps Yes, an activity says why.
        await eventually(
            lambda: any("bereinigt" in a["note"] for a in scene.activities(3)), "bounce activity"
        )
        assert scene.newsletter(3) == "1"
        assert scene.newsletter(2) == "1"  # pending: nothing to write back yet

    async def test_an_archived_member_is_not_counted_as_synced(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        world.mailchimp.member_action(scene.list_id, "p3@example.de", "archive")
        run = await scene.sync()
        counts = run["counts"]
        assert (counts["synced"], counts["archived"], counts["opted_out"]) == (2, 1, 0), run
        assert counts["reconciled"] is True, counts
        assert scene.member("p3@example.de").status == "archived"  # type: ignore[union-attr]
        # Archived is not an opt-out (issue #17 story 2): listed, onOffice keeps its value.
        problems = await scene.problems(run["id"])
        assert [(p["address_id"], p["kind"]) for p in problems] == [(3, "archived")]
        await scene.settled()
        assert scene.newsletter(3) == "1"


class TestEventOrder:
    async def test_an_older_redelivered_subscribe_does_not_undo_a_newer_unsubscribe(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 2)
        scene: Scene = await scenes("mailchimp")
        world.mailchimp.member_action(scene.list_id, "p1@example.de", "unsubscribe")
        await scene.mailchimp_event("unsubscribe", "p1@example.de", fired_at(), action="unsub")
        await scene.settled()
        assert scene.newsletter(1) == "0"
        # Mailchimp redelivers a subscribe from an hour ago.
        await scene.mailchimp_event("subscribe", "p1@example.de", fired_at(-3600))
        status = await scene.settled()
        assert scene.newsletter(1) == "0"
        assert status["pending"]["failed_inbound_events"] == 0
        # A genuinely newer subscribe (the person signed up again) does apply.
        at_mailchimp(world, scene.list_id, "p1@example.de", "subscribe", 60)
        await scene.mailchimp_event("subscribe", "p1@example.de", fired_at(60))
        await scene.settled()
        assert scene.newsletter(1) == "1"

    async def test_an_unsubscribe_then_archive_keeps_no(self, world: World, scenes: Make) -> None:
        seed(world, 2)
        scene: Scene = await scenes("mailchimp")
        at_mailchimp(world, scene.list_id, "p1@example.de", "unsubscribe")
        await scene.mailchimp_event("unsubscribe", "p1@example.de", fired_at(), action="unsub")
        await scene.settled()
        at_mailchimp(world, scene.list_id, "p1@example.de", "archive", 10)
        at_mailchimp(world, scene.list_id, "p2@example.de", "delete", 10)
        await scene.mailchimp_event("unsubscribe", "p1@example.de", fired_at(10), action="archive")
        await scene.mailchimp_event("unsubscribe", "p2@example.de", fired_at(10), action="delete")
        await scene.settled()
        assert scene.newsletter(1) == "0"  # "not specified" never overwrites No
        assert scene.newsletter(2) == "4"  # a subscribed contact removed: not specified

    async def test_archive_all_is_held_until_a_user_decides(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 8)
        scene: Scene = await scenes("mailchimp")
        for i in range(1, 9):
            await scene.mailchimp_event(
                "unsubscribe", f"p{i}@example.de", fired_at(), action="archive"
            )

        async def held() -> bool:
            return int((await scene.status())["pending"]["held_inbound_events"]) == 8

        await eventually(held, "the burst held")
        assert all(scene.newsletter(i) == "1" for i in range(1, 9))
        # Only six were really archived; applying confirms each at Mailchimp first.
        for i in range(1, 7):
            world.mailchimp.member_action(scene.list_id, f"p{i}@example.de", "archive")
        applied = await scene.api("POST", "/api/v1/held-events/apply")
        assert applied.json() == {"decision": "apply", "events": 8}
        await scene.settled()
        assert [scene.newsletter(i) for i in range(1, 9)] == ["4"] * 6 + ["1", "1"]

    async def test_a_dismissed_burst_changes_nothing(self, world: World, scenes: Make) -> None:
        seed(world, 6)
        scene: Scene = await scenes("mailchimp")
        for i in range(1, 7):
            await scene.mailchimp_event(
                "unsubscribe", f"p{i}@example.de", fired_at(), action="archive"
            )

        async def held() -> bool:
            return int((await scene.status())["pending"]["held_inbound_events"]) == 6

        await eventually(held, "the burst held")
        dismissed = await scene.api("POST", "/api/v1/held-events/dismiss")
        assert dismissed.json()["events"] == 6
        status = await scene.settled()
        assert status["pending"]["held_inbound_events"] == 0
        assert all(scene.newsletter(i) == "1" for i in range(1, 7))


class TestBrevo:
    async def test_a_fresh_yes_in_onoffice_lifts_the_blacklist(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 2)
        scene: Scene = await scenes("brevo")
        await scene.poll()  # the first poll sets the watermark
        # The person unsubscribed a minute ago (Brevo's `modifiedAt` says so).
        a_minute_ago = datetime.fromtimestamp(time.time() - 60, UTC).isoformat()
        world.brevo.contact_action(
            world.brevo.accounts[scene.key], "p1@example.de", "unsubscribe", at=a_minute_ago
        )
        await scene.brevo_event(
            {
                "event": "unsubscribed",
                "email": "p1@example.de",
                "list_id": [int(scene.list_id)],
                "ts": int(time.time()) - 60,
            }
        )
        await scene.settled()
        assert scene.newsletter(1) == "0"
        # The agent records a new consent in onOffice: that is newer than the blacklist.
        world.onoffice.seed([address(1, "p1@example.de", newsletter="0")], replace=False)
        await scene.poll()
        world.onoffice.seed([address(1, "p1@example.de", newsletter="1")], replace=False)
        await scene.poll()
        contact = scene.brevo_contact("p1@example.de")
        assert contact.blacklisted is False
        assert int(scene.list_id) in contact.list_ids

    async def test_an_unsubscribe_from_another_list_that_blacklists_is_applied(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 2)
        scene: Scene = await scenes("brevo")
        world.brevo.contact_action(world.brevo.accounts[scene.key], "p2@example.de", "unsubscribe")
        await scene.brevo_event(
            {"event": "unsubscribed", "email": "p2@example.de", "list_id": [9999]}
        )
        # An unsubscribe from another list that did not blacklist anyone changes nothing.
        await scene.brevo_event(
            {"event": "unsubscribed", "email": "p1@example.de", "list_id": [9999]}
        )
        await scene.settled()
        assert scene.newsletter(2) == "0" and scene.newsletter(1) == "1"

    async def test_a_new_brevo_subscriber_becomes_an_address_with_names(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 1)
        scene: Scene = await scenes("brevo")
        account = world.brevo.accounts[scene.key]
        world.brevo.seed_contact(
            account,
            "neu@example.de",
            attributes={"VORNAME": "Nora", "NACHNAME": "Neu"},
            list_ids=[int(scene.list_id)],
        )
        await scene.brevo_event(
            {
                "event": "list_addition",
                "email": "neu@example.de",
                "list_id": [int(scene.list_id)],
                "api_key_name": "",
            }
        )
        await scene.settled()
        created = [
            a.to_dict() for a in world.onoffice.addresses.values() if a.email == "neu@example.de"
        ]
        assert len(created) == 1
        assert (created[0]["Vorname"], created[0]["Name"]) == ("Nora", "Neu")


class TestIsolationAndDrift:
    async def test_a_refused_change_does_not_stop_the_poll(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        world.mailchimp.seed_member(scene.list_id, "taken@example.de")
        await scene.poll()
        # p1's new email exists in Mailchimp already (refused); p2 leaves the newsletter.
        world.onoffice.seed(
            [address(1, "taken@example.de"), address(2, "p2@example.de", newsletter="0")],
            replace=False,
        )
        await scene.poll()
        assert scene.member("p2@example.de").status == "unsubscribed"  # type: ignore[union-attr]
        status = await scene.status()
        assert status["refused_total"] == 1
        (refused,) = status["refused_changes"]
        assert refused["address_id"] == 1 and refused["reason"]
        # The watermark moved on: a later opt-out still arrives.
        world.onoffice.seed([address(3, "p3@example.de", newsletter="0")], replace=False)
        await scene.poll()
        assert scene.member("p3@example.de").status == "unsubscribed"  # type: ignore[union-attr]

    async def test_switching_to_another_list_rebuilds_the_ledger(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 4)
        scene: Scene = await scenes("mailchimp")
        saved = await scene.api(
            "PUT", "/api/v1/connection", json={"provider": "brevo", "api_key": scene_key()}
        )
        assert saved.status_code == 200, saved.text
        run = await scene.sync()
        assert run["counts"]["synced"] == 4 and run["counts"]["unchanged"] == 0, run
        list_id = int(saved.json()["list_id"])
        members = world.brevo.accounts[scene_key()].members[list_id]
        assert len(members) == 4

    async def test_a_drifted_provider_is_reported(self, world: World, scenes: Make) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        # Someone added a subscriber straight into the audience; onOffice does not know it.
        world.mailchimp.seed_member(scene.list_id, "extra@example.de")
        run = await scene.sync()
        assert run["counts"]["drift"] == 1 and run["counts"]["reconciled"] is False
        assert run["counts"]["provider_subscribed"] == 4


def scene_key() -> str:
    from tests.consent.conftest import BREVO_KEY

    return BREVO_KEY


class TestSafetyValve:
    async def test_an_empty_answer_does_not_empty_a_small_list(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 40)
        scene: Scene = await scenes("mailchimp")
        world.onoffice.seed([])  # onOffice answers with no newsletter addresses at all
        run = await scene.sync()
        assert run["counts"]["unsubscribed"] == 0 and run["counts"]["held_unsubscribes"] == 40
        assert run["warning"] and "held back" in run["warning"]
        subscribed = [m for m in world.mailchimp.lists[scene.list_id].members.values()]
        assert all(m.status == "subscribed" for m in subscribed)
        # The next run does not call it "unchanged 40, reconciled" either.
        again = await scene.sync()
        assert again["counts"]["held_unsubscribes"] == 40

    @pytest.mark.parametrize(("leaving", "held"), [(4, False), (5, True)])
    async def test_the_valve_works_by_proportion(
        self, world: World, scenes: Make, leaving: int, held: bool
    ) -> None:
        seed(world, 20)
        scene: Scene = await scenes("mailchimp")
        world.onoffice.seed(
            [address(i, f"p{i}@example.de", newsletter="0") for i in range(1, leaving + 1)],
            replace=False,
        )
        run = await scene.sync()
        assert (run["counts"]["held_unsubscribes"] > 0) is held, run
        assert run["counts"]["unsubscribed"] == (0 if held else leaving)


class TestFreshConsentAtMailchimp:
    @pytest.mark.parametrize(
        ("how", "subscribed"), [("admin_unsubscribe", True), ("unsubscribe", False)]
    )
    async def test_a_new_yes_after_an_unsubscribe(
        self, world: World, scenes: Make, how: str, subscribed: bool
    ) -> None:
        seed(world, 2)
        scene: Scene = await scenes("mailchimp")
        await scene.poll()
        at_mailchimp(world, scene.list_id, "p1@example.de", how, -60)
        # The person unsubscribed a minute ago; the agent records a new consent now.
        await scene.mailchimp_event("unsubscribe", "p1@example.de", fired_at(-60), action="unsub")
        await scene.settled()
        assert scene.newsletter(1) == "0"
        await scene.poll()  # the connector sees onOffice's No
        world.onoffice.seed([address(1, "p1@example.de", newsletter="1")], replace=False)
        await scene.poll()
        member = scene.member("p1@example.de")
        assert member is not None
        if subscribed:
            assert member.status == "subscribed"
        else:
            # A self-unsubscribed member is in a compliance state: listed with the reason.
            assert member.status == "unsubscribed"
            status = await scene.status()
            assert "compliance" in status["refused_changes"][0]["reason"]


class TestTags:
    async def test_a_label_pulled_back_is_not_added_twice(self, world: World, scenes: Make) -> None:
        seed(world, 1)
        scene: Scene = await scenes("mailchimp")
        lst = world.mailchimp.lists[scene.list_id]
        member = scene.member("p1@example.de")
        assert member is not None
        member.tags["Käufer"] = world.mailchimp._tag_id(lst, "Käufer")  # typed by a marketer
        run = await scene.sync()
        assert run["counts"]["tags_pulled"] == 1
        assert world.onoffice.addresses[1].tags == ["Kaeufer"]
        run = await scene.sync()
        names = sorted(scene.member("p1@example.de").tags)  # type: ignore[union-attr]
        assert names.count("Kaeufer") == 1 and "Käufer" not in names, names
        assert run["counts"]["unchanged"] == 1
