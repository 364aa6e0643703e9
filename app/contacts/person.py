"""One person, one decision (pure functions; no I/O).

A *person* is a normalised email of a connection with ALL of its onOffice addresses. The
connector remembers per address the Newsletter value it last saw and when it saw it change
(`AddressMemory`, stored as JSON on the person's ledger row, `contact.onoffice_addresses`).
From that memory and what onOffice shows now, `plan_person` derives the person's onOffice
signal and decides what happens at the provider and in onOffice:

* a value seen for the first time has no change time (it proves no fresh decision); the time
  it was first seen bounds it: it is not newer than that;
* the newest explicit change on any address wins; an opt-out (No, Cancellation) on one address
  wins over a Yes unless that Yes was seen to change clearly (> 5 s) after every opt-out; ties
  and unknown times go to the opt-out. So a Yes that did not change is never a fresh consent,
  and a No or Cancellation first seen beats a Yes first seen;
* "not specified", "double opt-in pending" or an archived address (absent) on one address do
  not speak for the person while another address says Yes (merging duplicates archives one);
* when the person's decision is an opt-out, every other address with the email that still says
  Yes is set to No in onOffice (with an activity naming the address that carried it), and the
  provider is unsubscribed unless its subscribe is clearly newer;
* when the person says Yes, `rules.decide_yes` decides against the provider's signal.

The full sync (`app.syncs.classify`) and the incremental push (`app.incremental.push`) only
execute these plans.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from app.contacts.rules import (
    EXPLICIT_NO,
    SUBSCRIBED,
    YES,
    Action,
    Signal,
    aware,
    decide_yes,
    newer,
    onoffice_value,
)
from onoffice_client.models import Address


@dataclass(frozen=True)
class AddressMemory:
    """What the connector last saw of one address: its value, when it saw it change (None: only
    ever seen with this value), when it first saw the address, and a value the connector wrote
    itself and expects to see next (`expect`, carrying the time of the decision it executes).
    An address that went from No/Cancellation to a neutral value ("not specified", archived)
    keeps that opt-out (`out`, `out_at`: None when its time is unknown): clearing the field is
    no new consent."""

    value: str
    at: datetime | None = None
    first_seen: datetime | None = None
    expect: str | None = None
    expect_at: datetime | None = None
    out: str | None = None
    out_at: datetime | None = None

    def bound(self) -> datetime | None:
        """The latest time this value can have been set (None: unknown)."""
        return aware(self.at) or aware(self.first_seen)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": self.value, "at": _iso(self.at), "f": _iso(self.first_seen)}
        if self.expect is not None:
            data |= {"x": self.expect, "xt": _iso(self.expect_at)}
        if self.out is not None:
            data |= {"o": self.out, "ot": _iso(self.out_at)}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AddressMemory:
        return cls(
            value=str(data.get("v")),
            at=_time(data.get("at")),
            first_seen=_time(data.get("f")),
            expect=data.get("x"),
            expect_at=_time(data.get("xt")),
            out=data.get("o"),
            out_at=_time(data.get("ot")),
        )


Memory = dict[int, AddressMemory]


def _iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return aware(datetime.fromisoformat(value)) if isinstance(value, str) and value else None


def load_memory(
    data: Mapping[str, Any] | None,
    *,
    owner: int | None = None,
    ledger: Signal = Signal(None),
) -> Memory:
    """The per-address memory of a ledger row. A row without one (written before it existed)
    starts from the ledger's per-email onOffice signal for the address that owns the row.

    The planner stores the person's signal in the ledger with the memory; when the ledger shows
    another Yes, No or "not specified", the webhook applier has since written that value onto
    the person's addresses (a provider event, at the event's time): the memory takes it as seen
    then, so an agent's later change back is a change, not the old value."""
    memory = {int(k): AddressMemory.from_json(v) for k, v in (data or {}).items()}
    if not memory and owner is not None and ledger.status is not None:
        memory[owner] = AddressMemory(ledger.status, aware(ledger.at), aware(ledger.at))
        return memory
    target = ledger.status
    if target not in APPLIER_WRITES or not memory:
        return memory
    ours = person_signal(memory)
    if (ours.status, ours.at) == (target, aware(ledger.at)):
        return memory
    return _written(memory, ledger)


def applier_wrote(
    data: Mapping[str, Any] | None, *, owner: int | None, before: Signal, written: Signal
) -> Memory:
    """The memory of a ledger row once the webhook applier has written `written` (a provider
    event's value, at the event's time) onto the person's addresses, `before` being the row's
    onOffice signal until then. The applier stores this with its signal, so the write is known
    even when its signal equals the planner's own (a re-subscribe at the very time the planner
    saw a fresh Yes): `load_memory` cannot tell those apart by the signal alone, and took an
    agent's No on an address the applier had set to Yes for a No it had seen long before."""
    memory = load_memory(data, owner=owner, ledger=before)
    if written.status not in APPLIER_WRITES or not memory:
        return memory
    return _written(memory, written)


def _written(memory: Memory, ledger: Signal) -> Memory:
    """The applier's value on every remembered address (see `load_memory`)."""
    target = ledger.status
    if target is None:
        return memory
    memory = dict(memory)
    for i, seen in memory.items():
        if seen.value == target and seen.expect is not None:
            # The applier's value supersedes a write of the connector still expected.
            memory[i] = replace(seen, expect=None, expect_at=None)
        if seen.value in (target, "absent"):
            continue
        if target == "not_specified" and seen.value in EXPLICIT_NO:
            continue  # "not specified" never overwrites No or Cancellation
        memory[i] = AddressMemory(target, aware(ledger.at), seen.first_seen)
    return memory


# Values the webhook applier writes onto every address of an email for a provider event.
APPLIER_WRITES = frozenset({YES, "no", "not_specified"})


def dump_memory(memory: Mapping[int, AddressMemory]) -> dict[str, Any]:
    return {str(k): memory[k].to_json() for k in sorted(memory)}


def observe(memory: AddressMemory | None, value: str, now: datetime) -> AddressMemory:
    """The memory of an address after seeing `value` now."""
    if memory is None:
        return AddressMemory(value, None, now)
    if memory.expect is not None and value == memory.expect:
        # The connector's own write arrived: no fresh decision.
        return _changed(memory, value, aware(memory.expect_at))
    if value == memory.value:
        return memory  # unchanged (or the connector's write has not arrived yet)
    return _changed(memory, value, now)


def _changed(memory: AddressMemory, value: str, at: datetime | None) -> AddressMemory:
    out, out_at = memory.out, memory.out_at
    if value == YES or value in EXPLICIT_NO:
        out, out_at = None, None
    elif memory.value in EXPLICIT_NO:
        out, out_at = memory.value, memory.bound()
    return AddressMemory(value, at, memory.first_seen, None, None, out, out_at)


@dataclass(frozen=True)
class PersonSignal:
    """The person's onOffice signal and the address that carries it (None: no address)."""

    status: str
    at: datetime | None
    carrier: int | None

    @property
    def signal(self) -> Signal:
        return Signal(self.status, self.at)


def person_signal(memory: Mapping[int, AddressMemory]) -> PersonSignal:
    """The onOffice signal of a person from its addresses' memories (see the module doc)."""
    if not memory:
        return PersonSignal("absent", None, None)
    ids = sorted(memory)
    opt_outs = [i for i in ids if memory[i].value in EXPLICIT_NO]
    yeses = [i for i in ids if memory[i].value == YES]
    # Opt-outs an address carried before its field was cleared ("not specified", archived).
    past = [i for i in ids if memory[i].out is not None and memory[i].value != YES]
    past = [i for i in past if memory[i].value not in EXPLICIT_NO]
    fresh_yes = _newest([i for i in yeses if memory[i].at is not None], memory)
    bounds = [memory[i].bound() for i in opt_outs] + [aware(memory[i].out_at) for i in past]
    if bounds and (
        fresh_yes is not None
        and all(b is not None for b in bounds)
        and all(newer(memory[fresh_yes].at, b) for b in bounds)
    ):
        return PersonSignal(YES, aware(memory[fresh_yes].at), fresh_yes)
    if opt_outs:
        carrier = _latest_opt_out(opt_outs, memory)
        return PersonSignal(memory[carrier].value, aware(memory[carrier].at), carrier)
    if past and yeses:
        carrier = _latest_past_opt_out(past, memory)
        out = memory[carrier].out
        assert out is not None
        return PersonSignal(out, aware(memory[carrier].out_at), carrier)
    if yeses:
        chosen = fresh_yes if fresh_yes is not None else yeses[0]
        return PersonSignal(YES, aware(memory[chosen].at), chosen)
    chosen = _newest([i for i in ids if memory[i].at is not None], memory) or ids[0]
    return PersonSignal(memory[chosen].value, aware(memory[chosen].at), chosen)


def _newest(ids: Sequence[int], memory: Mapping[int, AddressMemory]) -> int | None:
    best: int | None = None
    for i in ids:
        if best is None or newer(memory[i].at, memory[best].at):
            best = i
    return best


def _latest_past_opt_out(ids: Sequence[int], memory: Mapping[int, AddressMemory]) -> int:
    unknown = [i for i in ids if memory[i].out_at is None]
    if unknown:
        return unknown[0]
    best = ids[0]
    for i in ids[1:]:
        if newer(memory[i].out_at, memory[best].out_at):
            best = i
    return best


def _latest_opt_out(ids: Sequence[int], memory: Mapping[int, AddressMemory]) -> int:
    """The opt-out that carries the decision: an unknown time first, else the newest."""
    unknown = [i for i in ids if memory[i].bound() is None]
    if unknown:
        return unknown[0]
    best = ids[0]
    for i in ids[1:]:
        if newer(memory[i].bound(), memory[best].bound()):
            best = i
    return best


@dataclass(frozen=True)
class Seen:
    """One onOffice address of the person as read now (`value`: `rules.onoffice_value`)."""

    id: int
    value: str


@dataclass(frozen=True)
class PersonPlan:
    email: str
    signal: PersonSignal
    # The person says Yes: what `decide_yes` answered (send, resubscribe, write_back, ...).
    action: Action | None
    # The person does not say Yes and the provider has it subscribed: unsubscribe it.
    unsubscribe: bool
    # Addresses that still say Yes while the person opted out: set to No, activity naming
    # `signal.carrier`.
    set_no: tuple[int, ...]
    # Addresses of the email whose values conflict (those on Yes and those on No/Cancellation,
    # when both exist), for the problem list; empty when they agree.
    conflicts: tuple[int, ...]
    memory: Memory = field(default_factory=dict)
    # The person does not say Yes, but the provider's subscribe is clearly newer: it stands
    # (its event brings Yes to onOffice); nothing is sent, unsubscribed or written.
    kept: bool = False

    @property
    def wants(self) -> bool:
        return self.signal.status == YES

    @property
    def opt_out(self) -> bool:
        """An explicit onOffice opt-out (No or Cancellation) decides."""
        return self.signal.status in EXPLICIT_NO


def plan_person(
    email: str,
    addresses: Iterable[Seen],
    memory: Mapping[int, AddressMemory],
    provider: Signal,
    now: datetime,
    *,
    subscribed: bool | None = None,
    complete: bool = True,
) -> PersonPlan:
    """What a person becomes, from all of its addresses as read now, what the connector saw of
    them before (`memory`), the provider's newest signal (ledger and this run's list state) and
    whether the ledger has it subscribed at the provider.

    `complete`: `addresses` are all addresses with this email (then remembered addresses not
    among them left the person); otherwise addresses not read keep their last-seen value."""
    seen = {a.id: a.value for a in addresses}
    after: Memory = {} if complete else dict(memory)
    for address_id, value in seen.items():
        after[address_id] = observe(memory.get(address_id), value, now)
    person = person_signal(after)
    values = {i: m.value for i, m in after.items()}
    conflicts: tuple[int, ...] = ()
    if YES in values.values() and any(v in EXPLICIT_NO for v in values.values()):
        conflicts = tuple(i for i in sorted(values) if values[i] == YES or values[i] in EXPLICIT_NO)
    if person.status == YES:
        # A No the connector still expected belonged to an opt-out the person has since
        # taken back (the applier drops that write once the provider shows the new subscribe;
        # if it arrives anyway, it is a change like any other).
        after = {i: _without_expectation(m) for i, m in after.items()}
        action = decide_yes(person.signal, provider)
        return PersonPlan(email, person, action, False, (), conflicts, after)
    # A provider subscribe clearly newer than the onOffice signal wins (it is on its way to
    # onOffice as an event): nothing changes. Unknown times go to the opt-out.
    kept = (
        provider.status == SUBSCRIBED
        and person.at is not None
        and provider.at is not None
        and newer(provider.at, person.at)
    )
    if kept:
        return PersonPlan(email, person, None, False, (), conflicts, after, kept=True)
    unsubscribe = bool(subscribed) or provider.status == SUBSCRIBED
    set_no: tuple[int, ...] = ()
    if person.status in EXPLICIT_NO:
        set_no = tuple(i for i in sorted(after) if after[i].value == YES)
        for i in set_no:
            remembered = after[i]
            if remembered.expect is None:
                after[i] = replace(remembered, expect="no", expect_at=person.at or aware(now))
    return PersonPlan(email, person, None, unsubscribe, set_no, conflicts, after)


def _without_expectation(memory: AddressMemory) -> AddressMemory:
    if memory.expect is None:
        return memory
    return replace(memory, expect=None, expect_at=None)


def seen_of(addresses: Iterable[Address]) -> list[Seen]:
    return [Seen(a.id, onoffice_value(a.newsletter, active=a.active)) for a in addresses]


def person_addresses(
    email: str, fresh: Iterable[Address], others: Mapping[str, Sequence[Address]] | None
) -> tuple[list[Seen], bool]:
    """A person's addresses: those just read with this email (`fresh`, their values win) and
    the other addresses onOffice has with it (`others`, by normalised email; None: not read, so
    the person is incomplete and remembered addresses keep their values)."""
    found = {a.id: a for a in (others or {}).get(email, ())}
    found |= {a.id: a for a in fresh}
    return seen_of(found[i] for i in sorted(found)), others is not None
