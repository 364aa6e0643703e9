"""The drain: a connection's stored events applied in batches, in order, with grouped onOffice
requests; a rejected action fails its event alone; an outage delays but loses nothing; nothing
is applied twice. Events are stored the way ingest stores them, then one drain runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from app.config import Settings
from app.db.base import utcnow
from app.db.models import InboundEvent
from app.inbox import owner
from app.inbox.repository import InboundEventRepository
from app.resources import Resources, create_resources
from app.webhooks import drain
from app.webhooks.service import webhook as webhook_service
from emulators.mailchimp import DEFAULT_API_KEY
from emulators.onoffice import Fault
from providers.mailchimp.webhooks import parse_delivery as parse_mailchimp_delivery
from tests.e2e.conftest import World
from tests.e2e.test_webhooks import (
    Hooked,
    activities,
    address,
    at_mailchimp,
    connect,
    fired_at,
    newsletter,
)

N = 120


@pytest.fixture
async def hooked(
    world: World, e2e_settings: Settings, http: httpx.AsyncClient
) -> AsyncIterator[Hooked]:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in range(1, N + 1)])
    hooked = await connect(http, world, e2e_settings, "mailchimp", DEFAULT_API_KEY)
    yield hooked
    hooked.connector.stop()


@pytest.fixture
async def resources(hooked: Hooked) -> AsyncIterator[Resources]:
    res = await create_resources(hooked.connector.settings)
    yield res
    await res.aclose()


def form(
    kind: str, email: str, list_id: str, delta_s: float = 0, **data: str
) -> list[tuple[str, str]]:
    fields = {"type": kind, "fired_at": fired_at(delta_s), "data[email]": email}
    fields |= {"data[list_id]": list_id, "data[action]": "unsub", "data[reason]": "manual"}
    fields |= {f"data[{k}]": v for k, v in data.items()}  # overrides
    return list(fields.items())


def unsubscribed(world: World, hooked: Hooked, numbers: Iterable[int], delta_s: float = 0) -> None:
    """p{n} unsubscribe at Mailchimp (the state their webhooks are confirmed against)."""
    for n in numbers:
        at_mailchimp(world, hooked.list_id, f"p{n}@example.de", "unsubscribe", delta_s)


async def store(resources: Resources, hooked: Hooked, forms: list[list[tuple[str, str]]]) -> int:
    """What ingest does for each delivery: the event row, deduplicated (no drain kicked)."""
    token = hooked.hook_url.rsplit("/", 1)[1]
    connection = await webhook_service.cached_connection(resources, "mailchimp", token)
    stored = 0
    for fields in forms:
        events = parse_mailchimp_delivery(fields)
        stored += await webhook_service.store(resources, "mailchimp", connection, events)
    return connection.id if stored else -connection.id


async def events(resources: Resources) -> list[InboundEvent]:
    async with resources.sessionmaker() as session:
        return list(
            (await session.execute(select(InboundEvent).order_by(InboundEvent.id))).scalars()
        )


def requests_since(world: World, start: float) -> list[dict[str, Any]]:
    return [r for r in world.onoffice.recent_requests if r["at"] >= start]


class TestDrain:
    async def test_a_batch_keeps_the_order_and_groups_its_onoffice_writes(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        unsubscribed(world, hooked, range(1, N + 1), 10)
        forms = [
            form("unsubscribe", f"p{i}@example.de", hooked.list_id, 10) for i in range(1, N + 1)
        ]
        # p1 changes its mind twice, later in the same batch: by the time the drain reads
        # Mailchimp, p1 is unsubscribed again, so its subscribe is not confirmed and the last
        # unsubscribe is an echo (both after its first event, in order).
        at_mailchimp(world, hooked.list_id, "p1@example.de", "subscribe", 20)
        at_mailchimp(world, hooked.list_id, "p1@example.de", "unsubscribe", 30)
        forms += [
            form("subscribe", "p1@example.de", hooked.list_id, 20),
            form("unsubscribe", "p1@example.de", hooked.list_id, 30),
        ]
        connection_id = await store(resources, hooked, forms)
        start = time.time()
        before = world.onoffice.http_requests
        await drain.run_drain(resources, connection_id, None)
        used = world.onoffice.http_requests - before
        assert all(newsletter(world, i) == "0" for i in range(1, N + 1))
        assert [a["actiontype"] for a in activities(world, 1)] == ["nicht bestellt"]
        assert all(len(activities(world, i)) == 1 for i in range(2, N + 1))
        outcomes = [e.status for e in await events(resources)]
        assert outcomes == ["applied"] * N + ["unconfirmed", "ignored"], outcomes
        # 122 events: one lookup, the action kinds, 120 modifies + their merged activities in
        # a few requests of up to 50 actions, then one request per later wave of p1.
        assert used <= 10, used
        sizes = [len(r["actions"]) for r in requests_since(world, start)]
        assert max(sizes) == 50 and sum(1 for s in sizes if s > 1) >= 3, sizes
        lookups = [
            r
            for r in requests_since(world, start)
            if all(a["actionid"].endswith(":read") for a in r["actions"])
        ]
        assert len(lookups) == 1, lookups

    async def test_a_rejected_action_fails_its_event_alone_and_is_retried_later(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        unsubscribed(world, hooked, range(1, 11), 10)
        # p1's event has its own reason (note), so its activity is an action of its own.
        forms = [form("unsubscribe", "p1@example.de", hooked.list_id, 10, reason="own")]
        forms += [form("unsubscribe", f"p{i}@example.de", hooked.list_id, 10) for i in range(2, 11)]
        # A redelivery-like second unsubscribe of p1 (another reason) waits behind it.
        forms += [form("unsubscribe", "p1@example.de", hooked.list_id, 40, reason="again")]
        connection_id = await store(resources, hooked, forms)
        # The first activity onOffice receives is refused.
        world.onoffice.faults.append(
            Fault("inband", 1, errorcode=88, message="refused", resourcetype="agentslog")
        )
        start = time.time()
        await drain.run_drain(resources, connection_id, None)
        rows = {(e.payload["email"], e.payload["reason"]): e for e in await events(resources)}
        first = rows[("p1@example.de", "own")]
        assert (
            first.status == "pending"
            and first.attempts == 1
            and "refused" in (first.last_error or "")
        )
        assert first.payload["_steps"] == ["status"]  # its modify went through
        assert rows[("p1@example.de", "again")].status == "pending"  # order per email
        assert all(rows[(f"p{i}@example.de", "manual")].status == "applied" for i in range(2, 11))
        assert newsletter(world, 1) == "0" and activities(world, 1) == []
        # The drain scheduled a retry after a backoff: the activity once, then the echo.
        await resources.queue.join()  # type: ignore[attr-defined]
        assert [a["actiontype"] for a in activities(world, 1)] == ["nicht bestellt"]
        assert newsletter(world, 1) == "0"
        outcomes = {k: e.status for k, e in rows.items()} | {
            (e.payload["email"], e.payload["reason"]): e.status for e in await events(resources)
        }
        assert outcomes.pop(("p1@example.de", "again")) == "ignored"
        assert set(outcomes.values()) == {"applied"}
        # A refused activity may mean changed action kinds: the retry read them again.
        assert kinds_reads(world, start) == 2

    async def test_an_outage_keeps_events_pending_then_applies_each_once(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        unsubscribed(world, hooked, range(1, 21), 10)
        forms = [form("unsubscribe", f"p{i}@example.de", hooked.list_id, 10) for i in range(1, 21)]
        connection_id = await store(resources, hooked, forms)
        world.onoffice.faults.append(Fault("http", 4, status=503))  # every retry of one call
        await drain.run_drain(resources, connection_id, None)
        rows = await events(resources)
        assert all(e.status == "pending" and e.attempts == 1 for e in rows)
        assert newsletter(world, 1) == "1"
        await resources.queue.join()  # type: ignore[attr-defined]  # the hand-over after a backoff
        assert all(e.status == "applied" for e in await events(resources))
        assert all(newsletter(world, i) == "0" for i in range(1, 21))
        assert all(len(activities(world, i)) == 1 for i in range(1, 21))

    async def test_writes_whose_answer_was_lost_are_not_repeated_and_still_logged(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        unsubscribed(world, hooked, range(1, 21), 10)
        forms = [form("unsubscribe", f"p{i}@example.de", hooked.list_id, 10) for i in range(1, 21)]
        connection_id = await store(resources, hooked, forms)
        # onOffice applies the modifies and the activity, but the answer never arrives.
        world.onoffice.faults.append(
            Fault("lost", 1, status=504, seconds=0, resourcetype="agentslog", verb="create")
        )
        await drain.run_drain(resources, connection_id, None)
        rows = await events(resources)
        assert all(e.status == "pending" and e.attempts == 1 for e in rows)
        assert all("activity?" in e.payload["_steps"] for e in rows)
        # Not sent again at once: exactly one activity each so far.
        assert all(len(activities(world, i)) == 1 for i in range(1, 21))
        assert all(newsletter(world, i) == "0" for i in range(1, 21))
        start = time.time()
        await resources.queue.join()  # type: ignore[attr-defined]  # the retry after a backoff
        assert all(e.status == "applied" for e in await events(resources)), [
            (e.status, e.last_error) for e in await events(resources)
        ]
        # The retry found the activities (not an echo, not written again).
        assert all(len(activities(world, i)) == 1 for i in range(1, 21))
        checks = [
            a
            for r in requests_since(world, start)
            for a in r["actions"]
            if a["actionid"].endswith(":read") and a["resourcetype"] == "agentslog"
        ]
        assert len(checks) == 20  # one read per address, in one request

    @pytest.mark.parametrize(("lost", "step"), [("address", "create?"), ("agentslog", "activity?")])
    async def test_a_new_contact_whose_create_answer_was_lost_is_created_once_and_logged(
        self, world: World, hooked: Hooked, resources: Resources, lost: str, step: str
    ) -> None:
        at_mailchimp(world, hooked.list_id, "neu@example.de", "subscribe", 10)
        connection_id = await store(
            resources,
            hooked,
            [form("subscribe", "neu@example.de", hooked.list_id, 10, **{"merges][FNAME": "Neu"})],
        )
        world.onoffice.faults.append(
            Fault("lost", 1, status=504, seconds=0, resourcetype=lost, verb="create")
        )
        await drain.run_drain(resources, connection_id, None)
        (row,) = await events(resources)
        assert row.status == "pending" and row.payload["_steps"][-1] == step
        await resources.queue.join()  # type: ignore[attr-defined]
        (row,) = await events(resources)
        assert row.status == "applied", row.last_error
        created = [i for i, a in world.onoffice.addresses.items() if a.emails == ["neu@example.de"]]
        assert len(created) == 1
        assert [a["actiontype"] for a in activities(world, created[0])] == ["bestellt"]

    async def test_nothing_is_applied_twice(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        unsubscribed(world, hooked, range(1, 31), 10)
        forms = [form("unsubscribe", f"p{i}@example.de", hooked.list_id, 10) for i in range(1, 31)]
        connection_id = await store(resources, hooked, forms)
        # A second drain while one owns the connection is a no-op ...
        token = await owner.claim(resources, connection_id)
        assert token is not None
        before = world.onoffice.http_requests
        await drain.run_drain(resources, connection_id, None)
        assert world.onoffice.http_requests == before
        await drain.run_drain(resources, connection_id, token)
        assert all(len(activities(world, i)) == 1 for i in range(1, 31))
        # ... a redelivery is not stored again, and draining again touches nothing.
        assert await store(resources, hooked, forms) < 0
        before = world.onoffice.http_requests
        assert await drain.sweep(resources) == 0
        await drain.run_drain(resources, connection_id, None)
        await resources.queue.join()  # type: ignore[attr-defined]
        assert world.onoffice.http_requests == before
        assert all(len(activities(world, i)) == 1 for i in range(1, 31))


def kinds_reads(world: World, start: float) -> int:
    return sum(
        1
        for r in requests_since(world, start)
        for a in r["actions"]
        if a.get("resourcetype") == "actionkindtypes"
    )


class TestSmallDrains:
    async def test_a_small_drain_costs_one_lookup_and_one_write_once_the_kinds_are_known(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        checkouts: list[int] = []
        event.listen(resources.engine.sync_engine.pool, "checkout", lambda *a: checkouts.append(1))
        unsubscribed(world, hooked, (1, 2), 10)
        for i in (1, 2):
            connection_id = await store(
                resources, hooked, [form("unsubscribe", f"p{i}@example.de", hooked.list_id, 10)]
            )
            start, before = time.time(), world.onoffice.http_requests
            checkouts.clear()
            await drain.run_drain(resources, connection_id, None)
            assert newsletter(world, i) == "0" and len(activities(world, i)) == 1
            # The action kinds are read by the first drain only (kept per tenant).
            assert kinds_reads(world, start) == (1 if i == 1 else 0)
            if i == 2:
                assert world.onoffice.http_requests - before == 2  # the lookup, the writes
                # One read (connection, events, ledger), the settling transaction, and the
                # look for events that arrived meanwhile.
                assert len(checkouts) == 3, checkouts
        assert all(e.status == "applied" for e in await events(resources))

    async def test_an_event_committed_during_a_drain_with_a_smaller_id_is_applied_by_it(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        """Ids are taken before commit: an event that commits after the drain read a newer one
        has a smaller id, and its kick found the flag taken. The drain must still see it."""
        unsubscribed(world, hooked, (1, 2))
        token = hooked.hook_url.rsplit("/", 1)[1]
        connection = await webhook_service.cached_connection(resources, "mailchimp", token)
        late = parse_mailchimp_delivery(form("unsubscribe", "p1@example.de", hooked.list_id))
        async with resources.transaction() as session:  # takes its id now, commits later
            repo = InboundEventRepository.from_session(session)
            late_id = await repo.create_on_conflict_do_nothing(
                source="mailchimp",
                dedupe_key=late[0].dedupe_key,
                payload=late[0].model_dump(mode="json"),
                received_at=utcnow(),
                connection_id=connection.id,
            )
            await store(resources, hooked, [form("unsubscribe", "p2@example.de", hooked.list_id)])
            world.onoffice.latency = 0.3
            start = time.time()
            running = asyncio.create_task(drain.run_drain(resources, connection.id, None))
            for _ in range(1000):  # until the drain has read its batch and asks onOffice
                if requests_since(world, start):
                    break
                await asyncio.sleep(0.01)
        world.onoffice.latency = 0
        await running
        rows = {e.id: e for e in await events(resources)}
        assert late_id is not None and late_id < max(rows)
        assert all(e.status == "applied" for e in rows.values())
        assert newsletter(world, 1) == "0" and newsletter(world, 2) == "0"

    async def test_a_fresh_drain_job_lists_on_from_where_the_last_one_stopped(
        self, world: World, hooked: Hooked, resources: Resources
    ) -> None:
        """A drain job that caught up leaves its listing cursor for the connection's next job
        (a kick once more events arrive): the next job's confirmation reads go on from there
        instead of listing Mailchimp's changed members from the first page again."""
        # p21..p40 last changed an hour ago: outside the listing's window until they act.
        for n in range(21, 41):
            at_mailchimp(world, hooked.list_id, f"p{n}@example.de", "subscribe", -3600)
        unsubscribed(world, hooked, range(1, 21), 10)
        first = [form("unsubscribe", f"p{n}@example.de", hooked.list_id, 10) for n in range(1, 21)]
        connection_id = await store(resources, hooked, first)
        listings = world.mailchimp.changed_listings
        listings.clear()  # the full sync's
        await drain.run_drain(resources, connection_id, None)
        # The other 100 members changed at the full sync (within the window): one page.
        assert listings == [(None, 0, 100)], listings
        listings.clear()

        unsubscribed(world, hooked, range(21, 41), 20)  # later: behind the first job's cursor
        second = [
            form("unsubscribe", f"p{n}@example.de", hooked.list_id, 20) for n in range(21, 41)
        ]
        await store(resources, hooked, second)
        reads = sum(world.mailchimp.request_counts.values())
        await drain.run_drain(resources, connection_id, None)  # a new job (a kick)
        assert listings == [(None, 100, 20)], listings  # not from offset 0 again
        assert sum(world.mailchimp.request_counts.values()) - reads == 1  # no single reads
        assert all(newsletter(world, n) == "0" for n in range(1, 41))
        assert all(e.status == "applied" for e in await events(resources))

    async def test_batches_settle_while_the_next_one_works_and_all_is_recorded(
        self,
        world: World,
        hooked: Hooked,
        resources: Resources,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Each batch's outcomes commit while the next batch works (app/webhooks/settling.py);
        when the drain returns every event is settled, and a batch holding an email of the one
        still settling sees its outcome (p1's second unsubscribe is an echo)."""
        monkeypatch.setattr(drain, "BATCH_SIZE", 30)
        unsubscribed(world, hooked, range(1, 61), 10)
        forms = [form("unsubscribe", f"p{n}@example.de", hooked.list_id, 10) for n in range(1, 41)]
        forms.append(form("unsubscribe", "p1@example.de", hooked.list_id, 11))  # in batch 2
        forms += [
            form("unsubscribe", f"p{n}@example.de", hooked.list_id, 10) for n in range(41, 61)
        ]
        connection_id = await store(resources, hooked, forms)
        start = time.time()
        await drain.run_drain(resources, connection_id, None)
        rows = await events(resources)
        assert [e.status for e in rows] == ["applied"] * 40 + ["ignored"] + ["applied"] * 20
        assert all(newsletter(world, n) == "0" for n in range(1, 61))
        assert all(len(activities(world, n)) == 1 for n in range(1, 61))
        lookups = [
            r
            for r in requests_since(world, start)
            if all(a["actionid"].endswith(":read") for a in r["actions"])
        ]
        assert len(lookups) >= 3, lookups  # three batches
