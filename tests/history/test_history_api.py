"""Why is … (not) subscribed? One person through a sign-up by the full sync, the agent's No,
a forged and a real re-subscribe at Mailchimp and its write-back to onOffice: every step is in
the person's history, the current decision names its rule, the CSV exports it, and another
customer's session sees nothing of it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from tests.consent.conftest import Scene, address, eventually, fired_at
from tests.e2e.conftest import World
from tests.e2e.harness import auth
from tests.e2e.test_webhooks import at_mailchimp

Make = Callable[..., Any]
P1 = "p1@example.de"


def seed(world: World, n: int) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, n + 1)])


async def person(scene: Scene, email: str, lang: str = "en") -> dict[str, Any]:
    answer = await scene.http.get(
        f"{scene.connector.url}/api/v1/contacts",
        params={"email": email},
        headers=auth(scene.token) | {"Accept-Language": lang},
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def steps(body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(h["kind"], h["side"], h["value"], h["source"]) for h in body["history"]]


class TestPersonHistory:
    async def test_a_person_through_sign_up_no_resubscribe_and_write_back(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 3)
        scene: Scene = await scenes("mailchimp")
        runs = (await scene.api("GET", "/api/v1/syncs")).json()
        run_id = str(runs[0]["id"])
        # 1. The full sync subscribed p1 because onOffice says Yes.
        body = await person(scene, " P1@Example.de ")
        assert body["email"] == P1 and body["known"] is True
        assert body["decision"]["subscribed"] is True
        assert body["decision"]["rule"] == "onoffice_yes"
        assert steps(body) == [
            ("signal", "onoffice", "yes", "full_sync"),
            ("action", "provider", "subscribe", "full_sync"),
        ]
        assert {h["source_ref"] for h in body["history"]} == {run_id}
        assert body["history"][0]["address_id"] == 1

        # 2. The agent sets No in onOffice: the poll unsubscribes p1 at Mailchimp.
        await scene.poll()
        world.onoffice.seed([address(1, P1, newsletter="0")], replace=False)
        await scene.poll()
        await eventually(lambda: scene.member(P1).status == "unsubscribed", "unsubscribed")  # type: ignore[union-attr]
        body = await person(scene, P1)
        assert steps(body)[2:] == [
            ("signal", "onoffice", "no", "incremental"),
            ("action", "provider", "unsubscribe", "incremental"),
        ]
        assert body["decision"]["subscribed"] is False
        assert body["decision"]["rule"] == "onoffice_opt_out"
        assert body["decision"]["address_id"] == 1

        # 3. A re-subscribe webhook that Mailchimp does not confirm (forged or stale): onOffice
        # keeps No, the history keeps the attempt with its outcome.
        await scene.mailchimp_event("subscribe", P1, fired_at())
        await scene.settled()
        assert scene.newsletter(1) == "0"
        body = await person(scene, P1)
        attempt = body["history"][4]
        assert (attempt["kind"], attempt["side"], attempt["value"]) == (
            "signal",
            "provider",
            "subscribed",
        )
        assert attempt["source"] == "webhook" and attempt["note"] == "unconfirmed"
        assert body["decision"]["subscribed"] is False

        # 4. The person really signs up again at Mailchimp: the newer sign-up is written back
        # to onOffice (Yes), and the history shows the event and the write.
        at_mailchimp(world, scene.list_id, P1, "subscribe", 60)
        await scene.mailchimp_event("subscribe", P1, fired_at(60))
        await scene.settled()
        assert scene.newsletter(1) == "1"
        body = await person(scene, P1)
        assert steps(body)[5:] == [
            ("signal", "provider", "subscribed", "webhook"),
            ("action", "onoffice", "yes", "webhook"),
            ("action", "onoffice", "activity", "webhook"),
        ]
        event_ref = body["history"][5]["source_ref"]
        assert event_ref and {h["source_ref"] for h in body["history"][5:]} == {event_ref}
        assert body["history"][6]["address_id"] == 1
        assert body["decision"]["subscribed"] is True
        # Each entry is a sentence in the reader's language.
        german = await person(scene, P1, "de")
        assert german["history"][6]["text"].startswith("Connector hat in onOffice „Ja“")
        assert german["decision"]["text"].startswith("Angemeldet")

        # The export: the current decision, then every entry (proof of consent).
        exported = await scene.api("GET", "/api/v1/contacts", params={"email": P1, "format": "csv"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        table = list(csv.reader(io.StringIO(exported.text)))
        assert table[0][:5] == ["recorded_at", "occurred_at", "side", "kind", "value"]
        assert table[1][3] == "current" and table[1][4] == body["decision"]["rule"]
        assert [(r[3], r[2], r[4]) for r in table[2:]] == [(k, s, v) for k, s, v, _ in steps(body)]

    async def test_the_history_is_scoped_to_the_sessions_connection(
        self, world: World, scenes: Make
    ) -> None:
        seed(world, 2)
        first: Scene = await scenes("mailchimp")
        assert (await person(first, P1))["history"]
        other: Scene = await scenes("brevo", web_id="C2", sync=False)
        body = await person(other, P1)
        assert body["known"] is False and body["history"] == []
        assert body["decision"]["rule"] == "unknown"

    async def test_an_unknown_email_has_no_history(self, world: World, scenes: Make) -> None:
        seed(world, 1)
        scene: Scene = await scenes("mailchimp")
        body = await person(scene, "nobody@example.de")
        assert body == body | {"known": False, "history": []}
        assert (await scene.api("GET", "/api/v1/contacts")).status_code == 422
