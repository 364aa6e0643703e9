"""The real product for the consent model: the connector (PostgreSQL, in-process jobs) and the
onOffice and Mailchimp emulators as HTTP servers, driven over HTTP from a private event loop
(the state machine's rules are synchronous). One `Product` serves every example: `reset()`
truncates the tables and empties the emulators, then connects a fresh customer.

State is changed only through the product's public HTTP API, onOffice's signed "address saved"
webhook, the provider's webhook deliveries, and the emulators (the outside world). The
database is read (never written) to see that the queues drained and for I3; the periodic
sweeps are called as the cron would call them after a restart.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from sqlalchemy import text

from app.config import Settings
from app.db.base import Base
from app.db.engine import create_engine
from emulators.mailchimp import DEFAULT_API_KEY, Member, subscriber_hash
from tests.e2e.conftest import World
from tests.e2e.harness import (
    Connector,
    Tenant,
    auth,
    connect_tenant,
    signed_query,
    start_connector,
)

T = TypeVar("T")
LIST_NAME = "onoffice"
_tenants = itertools.count(1)
_users = itertools.count(100)


def mailchimp_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def member_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _timed(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(self: Product, *args: Any, **kw: Any) -> T:
        started = time.monotonic()
        try:
            return fn(self, *args, **kw)
        finally:
            self.timed(fn.__name__, started)

    return wrapper


@dataclass
class Lane:
    """One connection of the customer: "" the customer-wide one, else its group's."""

    token: str = ""
    list_id: str = ""
    hook_url: str = ""
    claim: str = ""


class Product:
    def __init__(self, world: World, settings: Settings) -> None:
        self.world = world
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        # Idle connections are dropped well before uvicorn closes them (5 s): reusing one the
        # server is closing fails the request ("Server disconnected"), as seen under load.
        self.http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(keepalive_expiry=1.0))
        self.engine = self.run_async(self._engine())
        self.connector: Connector = start_connector(settings)
        self.tenant: Tenant | None = None
        self.lanes: dict[str, Lane] = {"": Lane()}
        self.lane = ""  # the connection the next action is about
        self.polled: tuple[float, float] = (0.0, 0.0)  # the last poll of every connection
        self.timings: dict[str, tuple[float, int]] = {}

    # The current connection's session, list and webhook address.
    token = property(lambda self: self.lanes[self.lane].token)
    list_id = property(lambda self: self.lanes[self.lane].list_id)
    hook_url = property(lambda self: self.lanes[self.lane].hook_url)

    @list_id.setter
    def list_id(self, value: str) -> None:
        self.lanes[self.lane].list_id = value

    @hook_url.setter
    def hook_url(self, value: str) -> None:
        self.lanes[self.lane].hook_url = value

    @contextmanager
    def using(self, lane: str) -> Iterator[None]:
        """Act on (or look at) `lane`'s connection for a while."""
        before, self.lane = self.lane, lane
        try:
            yield
        finally:
            self.lane = before

    async def _engine(self) -> Any:
        return create_engine(self.settings.DATABASE_URL, pool_size=2)

    def run_async(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def timed(self, name: str, started: float) -> None:
        """Where an example's time goes (printed at the end with CONSENT_MODEL_TIMING=1)."""
        total, count = self.timings.get(name, (0.0, 0))
        self.timings[name] = (total + time.monotonic() - started, count + 1)

    def close(self) -> None:
        if os.environ.get("CONSENT_MODEL_TIMING"):
            for name, (total, count) in sorted(self.timings.items(), key=lambda i: -i[1][0]):
                print(f"{name:>16}: {total:7.2f} s in {count} calls")
        self.connector.stop()
        self.run_async(self.http.aclose())
        self.run_async(self.engine.dispose())
        self.loop.close()

    # -- per example ------------------------------------------------------------------------

    @_timed
    def reset(self, records: list[dict[str, Any]], groups: Any = None) -> None:
        """Empty tables and emulators, seed the address book, connect and run the first sync
        (`groups`: tests.consent.model_groups.Groups, one connection per group instead of the
        customer-wide one)."""
        self.settle()
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        self.sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        oo = self.world.onoffice
        oo.activities.clear()
        oo.activity_times.clear()
        oo.faults.clear()
        oo.clock_offset = -3600  # the book was last edited long before the example
        oo.seed(records)
        oo.clock_offset = 0
        self.world.mailchimp.lists.clear()
        self.world.mailchimp.faults.clear()
        self.world.mailchimp.forgotten_emails.clear()
        oo.users, oo.groups = (groups.users(), groups.groups()) if groups else ({}, {})
        self.lanes, self.lane = {}, ""
        if groups is None:
            self.lanes[""] = Lane()
            self.run_async(self._connect())
        else:
            self.run_async(groups.connect(self))
        for lane in self.lanes:
            with self.using(lane):
                self.sync()

    async def _connect(self) -> None:
        web_id = f"M{next(_tenants)}"
        self.tenant = Tenant(web_id, f"{web_id.lower():a<32}", "z" * 64, f"claim-{web_id}")
        token, saved = await connect_tenant(
            self.http, self.connector, self.world.onoffice_url, self.tenant, "mailchimp",
            DEFAULT_API_KEY,
        )  # fmt: skip
        self.lanes[""] = Lane(token=token, list_id=saved["list_id"], claim=self.tenant.claim)
        self._read_hook()

    def _read_hook(self) -> None:
        hooks = list(self.world.mailchimp.lists[self.list_id].webhooks.values())
        self.hook_url = hooks[0]["url"] if hooks else ""

    # -- the product's API ------------------------------------------------------------------

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.run_async(
            self.http.request(method, f"{self.connector.url}{path}", headers=auth(self.token), **kw)
        )

    def start_sync(self, *, force: bool = False) -> int:
        started = self.api("POST", "/api/v1/syncs", json={"force": force})
        assert started.status_code == 202, started.text
        return int(started.json()["id"])

    def sync(self, *, force: bool = False) -> dict[str, Any]:
        run_id = self.start_sync(force=force)
        return self.wait_run(run_id)

    @_timed
    def wait_run(self, run_id: int, wait_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + wait_s
        while True:
            rows = self.sql("SELECT status FROM sync_run WHERE id = :id", id=run_id)
            if rows and rows[0][0] in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, f"run {run_id} did not finish: {rows}"
            time.sleep(0.02)
        self.settle()
        response = self.api("GET", f"/api/v1/syncs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        return run

    @_timed
    def poll(self) -> None:
        """Every connection polls onOffice (one after another, each settled)."""
        started = time.time()
        for lane in list(self.lanes):
            with self.using(lane):
                response = self.api("POST", "/api/v1/changes/poll")
                assert response.status_code == 202, response.text
                self.settle()
        self.polled = (started, time.time())

    @_timed
    def address_saved(self, record_id: int) -> None:
        """onOffice's signed "address saved" webhook for one address."""
        assert self.tenant is not None
        params = {
            "customerWebId": self.tenant.web_id,
            "apiClaim": self.tenant.claim,
            # Two saves of one address within a second by the same user sign alike and the
            # second is taken for a replay (the poll finds it later); each save here is made
            # by another user, so the webhook itself carries every change.
            "userId": str(next(_users)),
            "timestamp": str(int(time.time())),
            "recordId": str(record_id),
        }
        url = f"{self.connector.url}/onoffice/webhook"
        query = signed_query(self.connector.url, "/onoffice/webhook", params)
        response = self.run_async(self.http.get(url, params=query))
        assert response.status_code == 200, response.text
        self.settle()

    @_timed
    def deliver(self, form: dict[str, str], hook_url: str | None = None) -> bool:
        """One Mailchimp webhook delivery; True when the product acknowledged it."""
        return self.deliver_all([form], hook_url)[0]

    @_timed
    def deliver_all(self, forms: list[dict[str, str]], hook_url: str | None = None) -> list[bool]:
        """Mailchimp's deliveries at the same time (one request each, concurrently)."""
        url = hook_url or self.hook_url
        if not url:
            return [False] * len(forms)
        # The connector may have restarted on another port since the event was made.
        target = f"{self.connector.url}/webhooks/{url.split('/webhooks/', 1)[1]}"

        async def post_all() -> list[httpx.Response]:
            return list(await asyncio.gather(*(self.http.post(target, data=f) for f in forms)))

        return [r.status_code == 200 for r in self.run_async(post_all())]

    def decide_held(self, decision: str) -> int:
        response = self.api("POST", f"/api/v1/held-events/{decision}")
        assert response.status_code == 200, response.text
        self.settle()
        return int(response.json()["events"])

    def runs(self) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/v1/syncs")
        assert response.status_code == 200, response.text
        runs: list[dict[str, Any]] = response.json()
        return runs

    @_timed
    def disconnect(self) -> None:
        response = self.api("DELETE", "/api/v1/connection")
        assert response.status_code == 204, response.text
        self.hook_url = ""
        self.settle()

    @_timed
    def connect(self) -> httpx.Response:
        """`PUT /api/v1/connection` with the same key: the list named "onoffice"."""
        if len(self.lanes) > 1:
            from tests.consent.model_groups import name_lists

            name_lists(self)
        response = self.api(
            "PUT", "/api/v1/connection", json={"provider": "mailchimp", "api_key": DEFAULT_API_KEY}
        )
        if response.status_code == 200:
            self.list_id = response.json()["list_id"]
            self._read_hook()
        self.settle()
        return response

    def switch_list(self) -> httpx.Response:
        """The customer picks another audience: the current list is renamed at Mailchimp (a
        list renamed earlier becomes "onoffice" again) and the connection saved again."""
        lists = self.world.mailchimp.lists
        current = lists[self.list_id]
        theirs = {lane.list_id for lane in self.lanes.values()}  # no other connection's list
        others = [lst for lst in lists.values() if lst.id not in theirs]
        current.name = f"old-{current.id}"
        if others:
            others[0].name = LIST_NAME
        return self.connect()

    @_timed
    def restart(self) -> None:
        """The process dies (in-process jobs with it) and a new one starts on the same database;
        the cron's sweeps (sync.resume, webhooks.sweep) then run once."""
        self.connector.stop()
        self.connector = start_connector(self.settings)
        self.run_async(self._sweeps())
        self.settle()

    async def _sweeps(self) -> None:
        from app.resources import create_resources
        from app.syncs.finish import resume_unfinished
        from app.webhooks.drain import sweep

        resources = await create_resources(self.connector.settings)
        try:
            await resume_unfinished(resources, stale_after_s=0)
            await sweep(resources)
            await resources.queue.join()  # type: ignore[attr-defined]
        finally:
            await resources.aclose()

    # -- settling ---------------------------------------------------------------------------

    def _queue_idle(self) -> bool:
        app = self.connector.server.server.config.app
        resources = getattr(app.state, "resources", None)
        return resources is None or not resources.queue._running

    @_timed
    def settle(self, wait_s: float = 60) -> None:
        """Wait until the in-process jobs ran to completion: no job queued or running, no run
        queued or running, no received event pending."""
        deadline = time.monotonic() + wait_s
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise AssertionError(f"the product did not settle: {self.pending()}")
            if self._queue_idle() and not any(self.pending().values()):
                quiet += 1
            else:
                quiet = 0
            time.sleep(0.01)

    def pending(self) -> dict[str, int]:
        rows = self.sql(
            "SELECT (SELECT count(*) FROM sync_run WHERE status IN ('queued', 'running')),"
            " (SELECT count(*) FROM inbound_event WHERE status = 'pending'"
            "  AND connection_id IS NOT NULL)"
        )
        runs, events = rows[0]
        return {"runs": int(runs), "events": int(events)}

    def pending_held(self, lane: str | None = None) -> int:
        """Events held for a decision at `lane`'s connection (default: the current one)."""
        rows = self.sql(
            "SELECT count(*) FROM inbound_event e JOIN connection c ON c.id = e.connection_id"
            " WHERE e.status = 'held' AND c.group_id = :g",
            g=self.lane if lane is None else lane,
        )
        return int(rows[0][0])

    def connection_id(self) -> int:
        rows = self.sql("SELECT id FROM connection WHERE group_id = :g", g=self.lane)
        return int(rows[0][0]) if rows else 0

    def sql(self, statement: str, **params: Any) -> list[Any]:
        async def go() -> list[Any]:
            async with self.engine.begin() as conn:
                result = await conn.execute(text(statement), params)
                return list(result.all()) if result.returns_rows else []

        return self.run_async(go())

    # -- what is to be seen -----------------------------------------------------------------

    def member(self, email: str) -> Member | None:
        lst = self.world.mailchimp.lists.get(self.list_id)
        return lst.members.get(subscriber_hash(email)) if lst else None

    def newsletter(self, address_id: int) -> str:
        return str(self.world.onoffice.addresses[address_id].newsletter)

    def book(self) -> dict[int, str]:
        return {i: str(a.newsletter) for i, a in self.world.onoffice.addresses.items()}
