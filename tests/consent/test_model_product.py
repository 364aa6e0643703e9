"""The consent model over the real product (issue #17, "Proof"): a hypothesis state machine
drives the connector (PostgreSQL, in-process jobs) and the onOffice and Mailchimp emulators
through random sequences of agent edits, provider actions with their webhooks delivered once,
twice, late, out of order or never, full syncs, crashes, polls, list switches, disconnects and
held-event decisions, and checks I1-I5 (tests/consent/model_checks.py) after every step.

Action families can be switched: `CONSENT_MODEL_ACTIONS=agent,provider,...` (or `all`); the
default is the set the product passes today (`PASSING`). The profile is picked with
`CONSENT_MODEL_PROFILE` (`ci`: 100 examples; `soak`: 2,000; `dev`: 10).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.config import Settings
from tests.consent.model_checks import Frozen, check_step
from tests.consent.model_families import PROFILE, PROFILES, every_example_grouped, on
from tests.consent.model_groups import GroupRules, Groups, scope_of
from tests.consent.model_lifecycle import LifecycleRules
from tests.consent.model_product import Product, mailchimp_time, member_time
from tests.consent.model_truth import REMOVALS, TIE, Address, ProviderAction, Truth
from tests.e2e.conftest import World, e2e_settings, world  # noqa: F401  (fixtures)
from tests.e2e.test_webhooks import address as address_record

PERSONS = 5
VALUES = st.sampled_from(["1", "0", "2", "4"])
DELIVERY = st.sampled_from(["once", "twice", "late", "never"])
# A crash is one full sync in three (a restart costs about a second).
SYNC_MODES = ["normal", "force"] + (["crash-0", "crash-50", "crash-200"] if on("crash") else [])
TAGS = st.lists(st.sampled_from(["Kaeufer", "Mieter", "Verkaeufer"]), unique=True, max_size=2)


class ConsentModel(LifecycleRules, GroupRules):
    product: Product  # set by the test, shared by every example

    def __init__(self) -> None:
        super().__init__()
        self.truth = Truth()
        self.frozen = Frozen()
        self.acknowledged: set[tuple[str, ...]] = set()
        self.late: list[ProviderAction] = []
        self.clocks: dict[str, float] = {}  # the provider's time of each email's last action
        self.connected = True
        self.fresh = 0
        self.before: dict[str, tuple[Any, ...]] = {}  # per connection ("" or the group)
        self.groups_init()

    # -- setup ------------------------------------------------------------------------------

    @initialize(
        layout=st.lists(st.integers(1, 3), min_size=PERSONS, max_size=PERSONS), data=st.data()
    )
    def setup(self, layout: list[int], data: st.DataObject) -> None:
        records, next_id = [], 1
        counts = [count if on("duplicates") else 1 for count in layout]
        # With other families on, one example in two has the two groups (CI's time), every
        # one with CONSENT_MODEL_GROUPS=all.
        self.grouped = self.grouped and (every_example_grouped() or data.draw(st.booleans()))
        owners = iter(self.support_users(data, sum(counts)))
        for person, count in enumerate(counts, start=1):
            for _ in range(count):
                email, owner = f"p{person}@example.de", next(owners)
                self.truth.addresses[next_id] = Address(next_id, email, benutzer=owner)
                records.append(
                    address_record(next_id, email, **({"Benutzer": owner} if owner else {}))
                )
                next_id += 1
        self.product.world.onoffice.access_log = [] if self.grouped else None
        self.product.reset(records, Groups() if self.grouped else None)
        self.product.poll()  # the first poll sets the watermark

    def teardown(self) -> None:
        # `make consent-soak` counts finished examples here (one line each) to show progress.
        if progress := os.environ.get("CONSENT_MODEL_PROGRESS"):
            with open(progress, "a") as out:
                out.write(f"{time.time():.0f}\n")

    # -- onOffice: the agent ----------------------------------------------------------------

    def _pick(self, data: st.DataObject) -> Address:
        return data.draw(st.sampled_from(sorted(self.truth.addresses.values(), key=lambda a: a.id)))

    def _seen(self, address: Address, via: str) -> tuple[float, float]:
        start = time.time()
        if via == "webhook":
            self.product.address_saved(address.id)
        else:
            self.product.poll()
        return start, time.time()

    def _edit(self, address: Address, via: str, **fields: object) -> tuple[float, float]:
        emu = self.product.world.onoffice.addresses[address.id]
        for name, value in fields.items():
            setattr(emu, name, value)
        if "newsletter" in fields:
            address.written = None  # the agent's value is the newest
        self.agent_ids.add(address.id)
        self.product.world.onoffice.touch(emu)
        return self._seen(address, via)

    @precondition(lambda self: on("agent") and self.connected)
    @rule(data=st.data(), value=VALUES, via=st.sampled_from(["webhook", "poll"]))
    def agent_sets_newsletter(self, data: st.DataObject, value: str, via: str) -> None:
        address = self._pick(data)
        if not address.active or self.product.newsletter(address.id) == value:
            return  # no change: nothing to see
        self.frozen.thaw(self.truth, address.email)
        address.changed = self._edit(address, via, newsletter=value)
        address.value = value
        address.edited = len(self.truth.actions)

    @precondition(lambda self: on("agent") and self.connected)
    @rule(data=st.data(), tags=TAGS, via=st.sampled_from(["webhook", "poll"]))
    def agent_sets_tags(self, data: st.DataObject, tags: list[str], via: str) -> None:
        address = self._pick(data)
        if address.active:
            self._edit(address, via, tags=list(tags))

    @precondition(lambda self: on("archive_address") and self.connected)
    @rule(data=st.data(), via=st.sampled_from(["webhook", "poll"]))
    def agent_archives_address(self, data: st.DataObject, via: str) -> None:
        address = self._pick(data)
        if address.active:
            self.frozen.thaw(self.truth, address.email)
            self._edit(address, via, status=0)
            address.active = False

    @precondition(lambda self: on("email_change") and self.connected)
    @rule(data=st.data(), other=st.integers(1, PERSONS + 1))
    def agent_changes_email(self, data: st.DataObject, other: int) -> None:
        address = self._pick(data)
        if not address.active:
            return
        if other > PERSONS:
            self.fresh += 1
            email = f"n{self.fresh}@example.de"
        else:
            email = f"p{other}@example.de"
        if email == address.email:
            return
        self.frozen.thaw(self.truth, address.email)
        self.frozen.thaw(self.truth, email)
        self._edit(address, "webhook", emails=[email])
        address.email, address.changed = email, None  # first sighting for that email
        address.joined = len(self.truth.actions)

    # -- the provider -----------------------------------------------------------------------

    def _form(self, kind: str, email: str, at: float, **data: str) -> dict[str, str]:
        form = {"type": kind, "fired_at": mailchimp_time(at), "data[email]": email}
        form |= {"data[list_id]": self.product.list_id}
        return form | {f"data[{k}]": v for k, v in data.items()}

    def _tick(self, email: str) -> float:
        """The provider's time for a new action on `email`: now, and clearly after the email's
        previous provider action (so that the provider's own order is never a tie)."""
        at = float(int(max(time.time(), self.clocks.get(email, 0.0) + TIE + 2)))
        self.clocks[email] = at
        return at

    def _provider(self, email: str, action: str, delivery: str) -> None:
        at = self._tick(email)
        self.frozen.thaw(self.truth, email)
        mc = self.product.world.mailchimp
        if action == "delete":
            lst = mc.lists[self.product.list_id]
            member = self.product.member(email)
            if member is not None:
                del lst.members[member.id]
                lst.version += 1
            mc.forgotten_emails.add(email.lower())  # Mailchimp refuses to add it again
            form = self._form("unsubscribe", email, at, action="delete", reason="manual")
        else:
            mc.member_action(self.product.list_id, email, action, at=member_time(at))
            form = {
                "unsubscribe": lambda: self._form(
                    "unsubscribe", email, at, action="unsub", reason="manual"
                ),
                "admin_unsubscribe": lambda: self._form(
                    "unsubscribe", email, at, action="unsub", reason="admin"
                ),
                "archive": lambda: self._form("unsubscribe", email, at, action="archive"),
                "subscribe": lambda: self._form("subscribe", email, at, **{"merges][EMAIL": email}),
                "clean": lambda: self._form("cleaned", email, at, reason="hard"),
            }[action]()
        record = ProviderAction(
            email, action, at, form, hook=self.product.hook_url, lane=self.product.lane
        )
        if action == "clean" and delivery != "late" and not self._unsettled(email):
            # A bounce keeps onOffice's value: from here until the email's next signal.
            self.frozen.freeze(self.scope_truth(), self.product, email, "I2 bounce")
        self.truth.actions.append(record)
        if delivery in ("once", "twice"):
            self._deliver(record, times=2 if delivery == "twice" else 1)
        elif delivery == "late":
            self.late.append(record)

    def _joins_held_burst(self, record: ProviderAction) -> None:
        if record.action in REMOVALS and self.product.pending_held(record.lane):
            # While a burst is held, a removal joins it (the product cannot tell it from a
            # late part of "Archive All"): it is the burst's, for the user to decide.
            record.action = "burst_archive"
            if not self._unsettled(record.email, but=record):
                view = self.truth.view(record.lane, scope_of(record.lane))
                self.frozen.freeze(view, self.product, record.email, "I5 burst")

    def _deliver(self, record: ProviderAction, times: int = 1) -> None:
        self._joins_held_burst(record)
        for attempt in range(times):
            if attempt:  # Mailchimp delivers again: nothing may be applied a second time
                self._redeliver(record)
            elif self.product.deliver(record.form, record.hook):
                record.known = True
                self.acknowledged.add(tuple(sorted(record.form.items())))
            self.product.settle()

    def _redeliver(self, record: ProviderAction) -> None:
        """I3: a delivery of an event the product already acknowledged changes nothing."""
        seen = self.product.world.onoffice
        before = (len(seen.activities), self.product.book())
        self.product.deliver(record.form, record.hook)
        self.product.settle()
        after = (len(seen.activities), self.product.book())
        assert after == before, (
            f"I3: the {record.action} of {record.email} delivered again was applied again: "
            f"activities {before[0]} -> {after[0]}, onOffice {before[1]} -> {after[1]}"
        )

    @precondition(lambda self: on("provider") and self.connected)
    @rule(data=st.data())
    def redeliver_old(self, data: st.DataObject) -> None:
        """Mailchimp retries an event it had delivered, later (after other changes)."""
        done = [
            a
            for a in self.truth.actions
            if tuple(sorted(a.form.items())) in self.acknowledged
            and a.hook == self.product.hook_url
        ]
        if done:
            self._redeliver(data.draw(st.sampled_from(done)))

    def _unsettled(self, email: str, but: ProviderAction | None = None) -> bool:
        lane = but.lane if but is not None else self.product.lane
        return any(
            a.email == email and not a.known and a is not but and a.lane == lane
            for a in self.truth.actions
        )

    def _member_email(self, data: st.DataObject, *, archived: bool = False) -> str | None:
        """A member of the list (an archived one only for a sign-up: archived contacts get no
        mail to unsubscribe from or bounce)."""
        emails = [
            e
            for e in self.truth.emails()
            if (m := self.product.member(e)) is not None and (archived or m.status != "archived")
        ]
        return data.draw(st.sampled_from(emails)) if emails else None

    @precondition(lambda self: on("provider") and self.connected)
    @rule(
        data=st.data(),
        action=st.sampled_from(["unsubscribe", "admin_unsubscribe", "subscribe"]),
        delivery=DELIVERY,
    )
    def provider_consent(self, data: st.DataObject, action: str, delivery: str) -> None:
        email = self._member_email(data, archived=action == "subscribe")
        if email is None:
            return
        member = self.product.member(email)
        if action != "subscribe" and member is not None and member.status == "unsubscribed":
            return  # Mailchimp changes nothing and sends no webhook: no new signal
        self._provider(email, action, delivery)

    @precondition(lambda self: on("removal") and self.connected)
    @rule(data=st.data(), action=st.sampled_from(["archive", "delete"]), delivery=DELIVERY)
    def provider_removal(self, data: st.DataObject, action: str, delivery: str) -> None:
        email = self._member_email(data)
        if email is not None:
            self._provider(email, action, delivery)

    @precondition(lambda self: on("bounce") and self.connected)
    @rule(data=st.data(), delivery=DELIVERY)
    def provider_bounce(self, data: st.DataObject, delivery: str) -> None:
        email = self._member_email(data)
        # Only a subscribed member is sent mail that can bounce (cleaning an unsubscribed one
        # would hide its unsubscribe from every later read of the list).
        if email is not None and (m := self.product.member(email)) and m.status == "subscribed":
            self._provider(email, "clean", delivery)

    @precondition(lambda self: bool(self.late))
    @rule(data=st.data())
    def deliver_late(self, data: st.DataObject) -> None:
        """A webhook held up on the way arrives (any of them: out of order)."""
        record = self.late.pop(data.draw(st.integers(0, len(self.late) - 1)))
        self.frozen.thaw(self.truth, record.email)
        self._deliver(record)

    def _after_sync(self, *, approved: bool = False) -> None:
        """A full sync read the list: the unsubscribes made before it are known to the product
        now (archives and deletes are not: a full sync does not write those back). A removal
        at another list that waited for it has reached this list ("left onOffice"), unless the
        safety valve held the run's unsubscribes (then with their approval)."""
        runs = self.product.runs()
        held = bool(runs and int(runs[0]["counts"].get("held_unsubscribes") or 0))
        for record in self.truth.actions:
            if record.lane != self.product.lane:
                continue
            if record.action in ("unsubscribe", "admin_unsubscribe"):
                record.known = True
            if approved or not held:
                record.awaits_sync = False

    @precondition(lambda self: on("sync") and self.connected)
    @rule(mode=st.sampled_from(SYNC_MODES))
    def full_sync(self, mode: str) -> None:
        """A full sync: normal, forced, or forced and the process dies while it runs (a new
        one resumes it through the sweep, after 0, 50 or 200 ms)."""
        if not mode.startswith("crash"):
            run = self.product.sync(force=mode == "force")
            assert run["status"] == "completed", run
        else:
            self.product.start_sync(force=True)
            time.sleep(int(mode.split("-")[1]) / 1000)
            self.product.restart()
            runs = self.product.runs()
            assert runs[0]["status"] == "completed", runs[0]
        self._after_sync()

    @precondition(lambda self: on("sync") and self.connected)
    @rule()
    def approve_held_unsubscribes(self) -> None:
        runs = self.product.runs()
        if runs and int(runs[0]["counts"].get("held_unsubscribes") or 0) > 0:
            response = self.product.api(
                "POST", f"/api/v1/syncs/{runs[0]['id']}/approve-unsubscribes"
            )
            assert response.status_code == 202, response.text
            self.product.settle()
            self._after_sync(approved=True)

    @precondition(lambda self: on("agent") and self.connected)
    @rule()
    def poll(self) -> None:
        self.product.poll()

    # -- the invariants, after every step (the rules settle before they return) -------------

    @invariant()
    def consent_invariants(self) -> None:
        if not self.truth.addresses:
            return
        self.product.timed("invariants", time.monotonic())  # counts the checks
        check_step(self)
        self.mark = time.time()


@pytest.fixture
def model_settings(e2e_settings: Settings) -> Settings:  # noqa: F811
    return e2e_settings.model_copy(
        update={
            "ARCHIVE_BURST_WINDOW_S": 0.25,
            "ARCHIVE_BURST_THRESHOLD": 3,
            "LOG_LEVEL": "ERROR",
            # Pages of two addresses when edits during a run are modelled (offset paging).
            "ONOFFICE_PAGE_SIZE": 2 if on("paging") else 500,
        }
    )


def test_consent_model_over_the_product(world: World, model_settings: Settings) -> None:  # noqa: F811
    product = Product(world, model_settings)
    ConsentModel.product = product
    profile = dict(PROFILES[PROFILE])
    # `make consent-soak` runs shards in parallel (one per core): shard i of n runs its share of
    # the examples from a seed of its own, so the shards draw different examples.
    shard, _, shards = os.environ.get("CONSENT_MODEL_SHARD", "").partition("/")
    machine: Any = ConsentModel
    if shards:
        profile["max_examples"] = -(-profile["max_examples"] // int(shards))
        machine = seed(int(shard) + 1)(type("ConsentModelShard", (ConsentModel,), {}))
    if blob := os.environ.get("CONSENT_MODEL_REPRODUCE"):
        # Replay a failure's blob: CONSENT_MODEL_REPRODUCE=<version>:<blob> (with the profile
        # it failed under: the step count shapes the data).
        from hypothesis import reproduce_failure

        version, _, data = blob.partition(":")
        machine = reproduce_failure(version, data.encode())(
            type("ConsentModelRepro", (ConsentModel,), {})
        )
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=profile["max_examples"],
                stateful_step_count=profile["stateful_step_count"],
                deadline=None,
                # Reproducible: the same examples on every run (CONSENT_MODEL_RANDOM=1: new ones).
                derandomize=not (os.environ.get("CONSENT_MODEL_RANDOM") or shards),
                database=None,
                phases=[Phase.explicit, Phase.generate]
                + ([Phase.shrink] if os.environ.get("CONSENT_MODEL_SHRINK") else []),
                suppress_health_check=list(HealthCheck),
                print_blob=True,
            ),
        )
    finally:
        product.close()
