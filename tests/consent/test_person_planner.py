"""The person planner on its own (pure functions, app/contacts/person.py): every row of the
consent table in docs/architecture.md for a one-address person, and the rules for a person with
several addresses (issue #17, story 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from app.contacts.person import (
    AddressMemory,
    Seen,
    applier_wrote,
    dump_memory,
    load_memory,
    observe,
    person_signal,
    plan_person,
)
from app.contacts.rules import Action, Signal

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW = 1000.0  # the planner runs at T0 + 1000 s


def at(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def mem(
    value: str,
    changed: float | None = None,
    first: float | None = 0,
    expect: str | None = None,
    expect_at: float | None = None,
    *,
    out: str | None = None,
    out_at: float | None = None,
) -> AddressMemory:
    return AddressMemory(value, at(changed), at(first), expect, at(expect_at), out, at(out_at))


@dataclass
class Case:
    name: str
    memory: dict[int, AddressMemory]
    seen: dict[int, str]
    provider: Signal = field(default_factory=lambda: Signal(None))
    subscribed: bool | None = None
    # What the plan must say.
    status: str = "yes"
    carrier: int | None = None
    action: Action | None = None
    unsubscribe: bool = False
    set_no: tuple[int, ...] = ()
    conflicts: tuple[int, ...] = ()
    fresh: bool | None = None  # the person's signal has a change time
    complete: bool = True
    extra: dict[str, object] = field(default_factory=dict)
    # The webhook applier wrote this onto the addresses after the planner stored `memory` with
    # the signal `ledger` (`person.applier_wrote`); the planner then reads the row back.
    ledger: Signal | None = None
    written: Signal | None = None


UNSUB = Signal("unsubscribed", at(500))
SUBSCRIBED = Signal("subscribed", at(500))

# One address: the consent table of docs/architecture.md, row by row.
TABLE = [
    Case("yes/unknown: send", {1: mem("yes")}, {1: "yes"}, Signal(None), action=Action.send),
    Case("yes/subscribed: send", {1: mem("yes")}, {1: "yes"}, SUBSCRIBED, action=Action.send),
    Case(
        "yes/transactional: send",
        {1: mem("yes")},
        {1: "yes"},
        Signal("transactional", at(500)),
        action=Action.send,
    ),
    Case(
        "yes/not in the list: send",
        {},
        {1: "yes"},
        Signal("not_in_list", at(500)),
        action=Action.send,
        fresh=False,
    ),
    Case(
        "yes/pending: pending",
        {1: mem("yes")},
        {1: "yes"},
        Signal("pending", at(500)),
        action=Action.pending,
    ),
    *[
        Case(
            f"changed to yes after {state}: resubscribe",
            {1: mem("no", 100)},
            {1: "yes"},
            Signal(state, at(500)),
            action=Action.resubscribe,
            carrier=1,
            fresh=True,
        )
        for state in ("unsubscribed", "blacklisted", "archived", "deleted")
    ],
    Case(
        # A bounce is no consent signal: a change to Yes does not make the address deliverable.
        "changed to yes after cleaned: still bounced (not sent until the email changes)",
        {1: mem("no", 100)},
        {1: "yes"},
        Signal("cleaned", at(500)),
        action=Action.bounced,
        carrier=1,
        fresh=True,
    ),
    *[
        Case(
            f"yes not newer than {state}: written back",
            {1: mem("yes", 100)},
            {1: "yes"},
            Signal(state, at(500)),
            action=Action.write_back,
            carrier=1,
        )
        for state in ("unsubscribed", "blacklisted")
    ],
    *[
        Case(
            # Archive All is a clean-up, not an opt-out: listed, neither re-added nor written.
            f"yes not newer than {state}: archived at the provider",
            {1: mem("yes", 100)},
            {1: "yes"},
            Signal(state, at(500)),
            action=Action.archived,
            carrier=1,
        )
        for state in ("archived", "deleted")
    ],
    Case(
        "yes first seen, opted out at the provider: written back (a first sync)",
        {},
        {1: "yes"},
        UNSUB,
        action=Action.write_back,
        fresh=False,
    ),
    Case(
        "yes within the tie of the opt-out: written back",
        {1: mem("no", 100)},
        {1: "yes"},
        Signal("unsubscribed", at(NOW - 3)),
        action=Action.write_back,
    ),
    Case(
        "yes not newer than cleaned: bounced",
        {1: mem("yes")},
        {1: "yes"},
        Signal("cleaned", at(500)),
        action=Action.bounced,
    ),
    *[
        Case(
            f"{value}/subscribed: unsubscribe",
            {1: mem("yes")},
            {1: value},
            SUBSCRIBED,
            subscribed=True,
            status=value,
            carrier=1,
            unsubscribe=True,
        )
        for value in ("no", "cancellation", "not_specified", "absent")
    ],
]

# Several addresses with one email: one person.
PERSON = [
    Case(
        "a No on one address opts the person out; the other's unchanged Yes gets No",
        {1: mem("yes"), 2: mem("yes")},
        {1: "no", 2: "yes"},
        SUBSCRIBED,
        subscribed=True,
        status="no",
        carrier=1,
        unsubscribe=True,
        set_no=(2,),
        conflicts=(1, 2),
    ),
    Case(
        "a No on the duplicate (not the ledger's address) counts the same",
        {1: mem("yes"), 2: mem("yes")},
        {1: "yes", 2: "cancellation"},
        SUBSCRIBED,
        subscribed=True,
        status="cancellation",
        carrier=2,
        unsubscribe=True,
        set_no=(1,),
        conflicts=(1, 2),
    ),
    Case(
        "an unchanged Yes beside an earlier No is no fresh consent (N8)",
        {1: mem("no", 100), 2: mem("yes")},
        {1: "no", 2: "yes"},
        UNSUB,
        subscribed=False,
        status="no",
        carrier=1,
        set_no=(2,),
        conflicts=(1, 2),
    ),
    Case(
        "a Yes changed clearly after every opt-out wins: fresh consent",
        {1: mem("no", 100), 2: mem("no", 200)},
        {1: "yes", 2: "no"},
        Signal("unsubscribed", at(150)),
        status="yes",
        carrier=1,
        action=Action.resubscribe,
        conflicts=(1, 2),
        fresh=True,
    ),
    Case(
        "a Yes change within 5 s of the opt-out is a tie: the opt-out wins",
        {1: mem("yes"), 2: mem("yes", 100)},
        {1: "yes", 2: "no"},
        UNSUB,
        status="no",
        carrier=2,
        set_no=(1,),
        conflicts=(1, 2),
        extra={"no_at": NOW - 3, "yes_at": NOW},
    ),
    Case(
        "a No first seen beats a Yes first seen",
        {},
        {1: "yes", 2: "no", 3: "yes"},
        Signal(None),
        status="no",
        carrier=2,
        set_no=(1, 3),
        conflicts=(1, 2, 3),
    ),
    Case(
        "a No of unknown time beats a timed Yes",
        {1: mem("no", None, None), 2: mem("no", 100)},
        {1: "no", 2: "yes"},
        UNSUB,
        status="no",
        carrier=1,
        set_no=(2,),
        conflicts=(1, 2),
    ),
    Case(
        "a No first seen before a later change to Yes: the Yes is newer",
        {1: mem("no", None, 100), 2: mem("no", 100)},
        {1: "no", 2: "yes"},
        Signal("unsubscribed", at(50)),
        status="yes",
        carrier=2,
        action=Action.resubscribe,
        conflicts=(1, 2),
        fresh=True,
    ),
    Case(
        "not specified or archived on a duplicate does not speak for the person",
        {1: mem("yes"), 2: mem("yes"), 3: mem("yes")},
        {1: "yes", 2: "not_specified", 3: "absent"},
        SUBSCRIBED,
        subscribed=True,
        action=Action.send,
        carrier=1,
    ),
    Case(
        "a Cancellation cleared to 'not specified' is no new consent for an older Yes",
        {1: mem("yes", 100), 2: mem("cancellation", 200)},
        {1: "yes", 2: "not_specified"},
        Signal("subscribed", at(100)),
        subscribed=True,
        status="cancellation",
        carrier=2,
        unsubscribe=True,
        set_no=(1,),
        conflicts=(),
    ),
    Case(
        "a Yes newer than the cleared Cancellation is a fresh consent",
        {1: mem("no", 100), 2: mem("not_specified", 300, 0, out="cancellation", out_at=200)},
        {1: "yes", 2: "not_specified"},
        UNSUB,
        status="yes",
        carrier=1,
        action=Action.resubscribe,
        fresh=True,
    ),
    Case(
        "no address says Yes, none No: the person is not Yes (unsubscribe)",
        {1: mem("yes"), 2: mem("not_specified")},
        {1: "absent", 2: "not_specified"},
        SUBSCRIBED,
        subscribed=True,
        status="absent",
        carrier=1,
        unsubscribe=True,
    ),
    Case(
        "a provider subscribe clearly newer than the onOffice opt-out is not undone",
        {1: mem("yes"), 2: mem("no", 100)},
        {1: "yes", 2: "no"},
        Signal("subscribed", at(300)),
        subscribed=True,
        status="no",
        carrier=2,
        conflicts=(1, 2),
        extra={"kept": True},
    ),
    Case(
        "an opt-out of unknown time unsubscribes even a timed subscribe",
        {1: mem("yes"), 2: mem("no", None, None)},
        {1: "yes", 2: "no"},
        Signal("subscribed", at(300)),
        subscribed=True,
        status="no",
        carrier=2,
        unsubscribe=True,
        set_no=(1,),
        conflicts=(1, 2),
    ),
    Case(
        "the connector's own No arriving on address 2 is not a change",
        {1: mem("no", 100), 2: mem("yes", None, 0, "no", 100)},
        {1: "yes", 2: "no"},
        Signal("unsubscribed", at(100)),
        status="yes",
        carrier=1,
        action=Action.resubscribe,
        conflicts=(1, 2),
        fresh=True,
    ),
    Case(
        "the connector's No not arrived yet: address 2's Yes is still unchanged",
        {1: mem("no", 100), 2: mem("yes", None, 0, "no", 100)},
        {1: "no", 2: "yes"},
        UNSUB,
        status="no",
        carrier=1,
        set_no=(2,),
        conflicts=(1, 2),
    ),
    Case(
        # Found by the planner model (issue #17): the applier's Yes (a re-subscribe at 600)
        # left the very signal the planner had stored for address 1's fresh Yes at 600; the
        # agent's No on address 2 afterwards is the newest signal, not the No of 100.
        "a No after the applier's Yes at the time of a fresh Yes unsubscribes",
        {1: mem("yes", 600), 2: mem("no", 100)},
        {1: "yes", 2: "no"},
        Signal("subscribed", at(600)),
        subscribed=True,
        status="no",
        carrier=2,
        unsubscribe=True,
        set_no=(1,),
        conflicts=(1, 2),
        fresh=True,
        ledger=Signal("yes", at(600)),
        written=Signal("yes", at(600)),
    ),
    Case(
        "the same without the applier's write: the fresh Yes beats the older No",
        {1: mem("yes", 600), 2: mem("no", 100)},
        {1: "yes", 2: "no"},
        Signal("subscribed", at(600)),
        subscribed=True,
        status="yes",
        carrier=1,
        action=Action.send,
        conflicts=(1, 2),
        fresh=True,
        ledger=Signal("yes", at(600)),
    ),
    Case(
        "an address not read keeps its last value when the read is partial",
        {1: mem("no", 100), 2: mem("yes")},
        {2: "yes"},
        UNSUB,
        status="no",
        carrier=1,
        set_no=(2,),
        conflicts=(1, 2),
        complete=False,
    ),
    Case(
        "an address that left the person (complete read) no longer counts",
        {1: mem("no", 100), 2: mem("yes")},
        {2: "yes"},
        UNSUB,
        status="yes",
        carrier=2,
        action=Action.write_back,
    ),
]


def _apply_extra(case: Case) -> Case:
    """Rows that need an exact pair of change times (the tie)."""
    if "no_at" in case.extra:
        case.memory = {1: mem("yes", case.extra["yes_at"]), 2: mem("no", case.extra["no_at"])}  # type: ignore[arg-type]
        case.seen = {1: "yes", 2: "no"}
    return case


@pytest.mark.parametrize("case", [*TABLE, *PERSON], ids=lambda c: c.name)
def test_plan_person(case: Case) -> None:
    case = _apply_extra(case)
    memory = case.memory
    if case.ledger is not None:
        stored, ledger = dump_memory(memory), case.ledger
        if case.written is not None:
            memory = applier_wrote(stored, owner=1, before=ledger, written=case.written)
            stored, ledger = dump_memory(memory), case.written
        memory = load_memory(stored, owner=1, ledger=ledger)
    plan = plan_person(
        "anna@example.de",
        [Seen(i, v) for i, v in sorted(case.seen.items())],
        memory,
        case.provider,
        at(NOW),  # type: ignore[arg-type]
        subscribed=case.subscribed,
        complete=case.complete,
    )
    assert plan.signal.status == case.status
    if case.carrier is not None:
        assert plan.signal.carrier == case.carrier
    assert plan.action == case.action
    assert plan.wants == (case.status == "yes")
    assert plan.unsubscribe == case.unsubscribe
    assert plan.set_no == case.set_no
    assert plan.conflicts == case.conflicts
    assert plan.kept == bool(case.extra.get("kept"))
    if case.fresh is not None:
        assert (plan.signal.at is not None) == case.fresh
    # Every address to be set to No is remembered as expecting the connector's write.
    for i in plan.set_no:
        assert plan.memory[i].expect == "no"


def test_observe_times_only_changes_and_recognises_the_connectors_write() -> None:
    now = at(NOW)
    assert now is not None
    assert observe(None, "yes", now) == AddressMemory("yes", None, now)
    assert observe(mem("yes"), "yes", now) == mem("yes")
    assert observe(mem("yes", 5), "no", now) == AddressMemory("no", now, at(0))
    waiting = mem("yes", None, 0, "no", 100)
    assert observe(waiting, "yes", now) == waiting
    assert observe(waiting, "no", now) == mem("no", 100, 0)
    assert observe(waiting, "cancellation", now) == AddressMemory("cancellation", now, at(0))
    # Clearing a No keeps it as the address's past opt-out; a Yes ends it.
    cleared = observe(mem("no", 5), "not_specified", now)
    assert cleared == AddressMemory("not_specified", now, at(0), out="no", out_at=at(5))
    assert observe(cleared, "yes", now) == AddressMemory("yes", now, at(0))


def test_the_memory_round_trips_and_a_legacy_row_starts_from_the_ledger() -> None:
    memory = {
        1: mem("no", 100),
        2: mem("yes", None, 0, "no", 100),
        3: mem("absent", 50, out="cancellation", out_at=20),
    }
    assert load_memory(dump_memory(memory)) == memory
    assert load_memory(None, owner=7, ledger=Signal("no", at(5))) == {7: mem("no", 5, 5)}
    assert load_memory(None, owner=7, ledger=Signal(None)) == {}
    # A stored memory wins over the ledger's per-email signal when that is the planner's own.
    assert load_memory(dump_memory(memory), owner=1, ledger=Signal("no", at(100))) == memory


def test_person_signal_of_nobody_is_absent() -> None:
    assert person_signal({}).status == "absent"


def test_a_value_the_webhook_applier_wrote_is_remembered_as_written_at_the_event() -> None:
    memory = {1: mem("no", 100), 2: mem("cancellation", 100), 3: mem("absent")}
    stored = dump_memory(memory)
    # The planner's own signal in the ledger: nothing was written since.
    assert load_memory(stored, owner=1, ledger=Signal("no", at(100))) == memory
    # A provider re-subscribe was applied at 300: Yes on every address (archived ones aside).
    assert load_memory(stored, owner=1, ledger=Signal("yes", at(300))) == {
        1: mem("yes", 300),
        2: mem("yes", 300),
        3: mem("absent"),
    }
    # "Not specified" (archived at the provider) never overwrites No or Cancellation.
    assert load_memory(stored, owner=1, ledger=Signal("not_specified", at(300))) == memory
    # "absent" comes from the connector's own stale sweep, not from a write onto addresses.
    assert load_memory(stored, owner=1, ledger=Signal("absent", at(300))) == memory
    # A No the connector still expects on an address is superseded by the applier's Yes.
    waiting = dump_memory({1: mem("no", 100), 2: mem("yes", None, 0, "no", 100)})
    assert load_memory(waiting, owner=1, ledger=Signal("yes", at(300))) == {
        1: mem("yes", 300),
        2: mem("yes", None, 0),
    }
    # So the agent's No after the re-subscribe is a change, seen now.
    after = load_memory(stored, owner=1, ledger=Signal("yes", at(300)))
    plan = plan_person(
        "anna@example.de",
        [Seen(1, "no"), Seen(2, "yes"), Seen(3, "absent")],
        after,
        Signal("subscribed", at(300)),
        at(NOW),  # type: ignore[arg-type]
        subscribed=True,
    )
    assert plan.signal.status == "no" and plan.unsubscribe and plan.set_no == (2,)


def test_an_expected_no_ends_when_the_person_says_yes_again() -> None:
    # The connector was to write No onto address 1 (opt-out at 50); address 2 changed to Yes
    # clearly later: the person says Yes, and address 1's No, if it still comes, is a change.
    memory = {1: mem("yes", None, 0, "no", 50), 2: mem("no", 50)}
    plan = plan_person(
        "anna@example.de",
        [Seen(1, "yes"), Seen(2, "yes")],
        memory,
        Signal("unsubscribed", at(50)),
        at(NOW),  # type: ignore[arg-type]
    )
    assert plan.action == Action.resubscribe and plan.memory[1].expect is None
    later = plan_person(
        "anna@example.de",
        [Seen(1, "no"), Seen(2, "yes")],
        plan.memory,
        Signal("subscribed", at(NOW)),
        at(NOW + 10),  # type: ignore[arg-type]
        subscribed=True,
    )
    assert later.signal.status == "no" and later.unsubscribe
