"""The consent model's own record of the world (pure; no I/O): every explicit consent signal
with the time the product can know it by, and what the invariants I1-I5 demand of it.

Times. An onOffice change gets the time the product first sees it (its own clock), which the
model knows only as the interval around the delivery (`lo`..`hi`, wall clock). A provider
signal carries the provider's time (the webhook's `fired_at`, the member's `last_changed`),
which the model chooses. Signals closer than `TIE` seconds tie, and a tie goes to the opt-out;
when the interval makes an order uncertain, the email is left out of the checks of that step
(`newest()` answers None), so the model never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TIE = 5.0
SLACK = 0.6  # clock resolution (fired_at is to the second) and database rounding

YES, NO, CANCELLATION, NOT_SPECIFIED = "1", "0", "2", "4"
OPT_OUT_VALUES = frozenset({NO, CANCELLATION})
# Provider actions and what they mean for consent: None = not a consent signal.
PROVIDER_MEANING = {
    "unsubscribe": "out",  # the person, via the link
    "admin_unsubscribe": "out",
    "archive": "out",  # a single archive: "not specified" after the window
    "delete": "out",  # permanent delete: like a single archive
    "subscribe": "in",  # the person signs up again
    "clean": None,  # a bounce is not consent
    "burst_archive": None,  # "Archive All": a cost clean-up, not consent
}
REMOVALS = frozenset({"archive", "delete"})


@dataclass
class Signal:
    direction: str  # "in" | "out"
    lo: float | None  # None: no known time (a first sighting)
    hi: float | None
    side: str  # "onoffice" | "provider"
    action: str = ""  # the provider action, or the onOffice value

    def surely_newer(self, other: Signal) -> bool:
        assert self.lo is not None and other.hi is not None
        return self.lo - other.hi > TIE + SLACK

    def maybe_newer(self, other: Signal) -> bool:
        assert self.hi is not None and other.lo is not None
        return self.hi - other.lo > TIE - SLACK


@dataclass
class Address:
    id: int
    email: str
    value: str = YES  # what the agent last set (the product's write-backs are not signals)
    active: bool = True
    changed: tuple[float, float] | None = None  # when the product saw the agent's change
    tags: list[str] = field(default_factory=list)
    benutzer: str = ""  # the support user (groups: which groups' scopes hold the address)
    # Groups: a value a connection wrote to onOffice (value, written after, seen by every
    # connection by; None = not yet known to be seen): one Newsletter field per address, so
    # for the other connections it is an onOffice change like an agent's.
    written: tuple[str, float, float | None] | None = None
    # How many provider actions the model had recorded when the address got its current email
    # (-1: from the start). A removal recorded before it is not this address's (I2, below).
    joined: int = -1
    # How many provider actions the model had recorded when the agent last set this address's
    # Newsletter (-1: never). A provider action recorded before it came first in fact, whatever
    # the model's provider clock says (`_tick` stamps a person's provider actions at least
    # TIE + 2 s apart, so they can run ahead of the wall clock the agent's edits are stamped
    # with): I2 leaves an address alone whose agent set a value other than Yes after the opt-out.
    edited: int = -1

    def signal(self, *, written: bool = True) -> Signal | None:
        if not self.active:
            return None
        if written and self.written is not None and self.written[2] is not None:
            # Once every connection polled after it (before, some may not know it yet: the
            # email is left out of I4 meanwhile, `pending_written`).
            value, lo, hi = self.written
            if value in OPT_OUT_VALUES | {YES}:
                direction = "in" if value == YES else "out"
                return Signal(direction, lo, hi, "onoffice", value)
            return None
        if self.value not in OPT_OUT_VALUES | {YES}:
            return None
        direction = "in" if self.value == YES else "out"
        lo, hi = self.changed if self.changed else (None, None)
        return Signal(direction, lo, hi, "onoffice", self.value)


@dataclass
class ProviderAction:
    email: str
    action: str
    at: float  # the provider's time (epoch seconds)
    form: dict[str, str]
    hook: str = ""  # the webhook address it goes to (the connection's at the time)
    lane: str = ""  # the connection's group ("" = the customer-wide connection)
    known: bool = False  # delivered and acknowledged, or read by a later full sync
    # A removal at a list the connection has left, applied by a user's decision on its held
    # burst: the current list learns it only from its next full sync (README, "Consent comes
    # first": "a removal at B is unsubscribed at A by the next full sync").
    awaits_sync: bool = False


def newest(signals: list[Signal]) -> str | None:
    """ "in" or "out" for the newest explicit signal (ties and unknown times go to the opt-out),
    or None when the recorded times leave the answer open. An untimed Yes is no fresh consent:
    it counts only when nothing timed is known."""
    if not signals:
        return None
    timed = [s for s in signals if s.lo is not None]
    untimed_out = any(s.lo is None and s.direction == "out" for s in signals)
    if not timed:
        return "out" if untimed_out else "in"
    ins = [s for s in timed if s.direction == "in"]
    outs = [s for s in timed if s.direction == "out"]
    if not ins:
        return "out"
    if not outs:
        return None if untimed_out else "in"
    if any(all(i.surely_newer(o) for o in outs) for i in ins):
        return None if untimed_out else "in"
    if all(any(not i.maybe_newer(o) for o in outs) for i in ins):
        return "out"
    return None


@dataclass
class Truth:
    """What happened, as the model knows it."""

    addresses: dict[int, Address] = field(default_factory=dict)
    actions: list[ProviderAction] = field(default_factory=list)

    def view(self, lane: str, scope: frozenset[str] | None) -> Truth:
        """What one connection answers for: the addresses of its scope (`scope`: the support
        users it covers, None = all) and the provider actions at its list."""
        return Truth(
            {i: a for i, a in self.addresses.items() if scope is None or a.benutzer in scope},
            [a for a in self.actions if a.lane == lane],
        )

    def pending_written(self) -> set[str]:
        """Emails with a value a connection wrote that not every connection polled yet."""
        return {a.email for a in self.addresses.values() if a.written and a.written[2] is None}

    def emails(self) -> list[str]:
        return sorted({a.email for a in self.addresses.values()})

    def of(self, email: str) -> list[Address]:
        return [a for a in self.addresses.values() if a.email == email]

    def signals(self, email: str) -> list[Signal]:
        found = [s for a in self.of(email) if (s := a.signal()) is not None]
        provider = self.last_provider_signal(email)
        if provider is not None:
            found.append(Signal(PROVIDER_MEANING[provider.action] or "", provider.at,
                                provider.at, "provider", provider.action))  # fmt: skip
        return found

    def last_provider_signal(self, email: str) -> ProviderAction | None:
        consent = [a for a in self.actions if a.email == email and PROVIDER_MEANING[a.action]]
        return max(consent, key=lambda a: a.at) if consent else None

    def newest(self, email: str) -> str | None:
        return newest(self.signals(email))

    def provider_opt_out_wins(self, email: str) -> ProviderAction | None:
        """The provider opt-out that is the newest signal of `email` (and the product could
        know), if any."""
        last = self.last_provider_signal(email)
        if last is None or PROVIDER_MEANING[last.action] != "out" or not last.known:
            return None
        if self.newest(email) != "out":
            return None
        onoffice = [
            s for a in self.of(email) if (s := a.signal(written=False)) and s.lo is not None
        ]
        if any(s.hi is not None and s.hi + TIE + SLACK > last.at for s in onoffice):
            return None  # an onOffice change is as new: the opt-out may be onOffice's own
        return last


def allowed_onoffice(action: str) -> set[str]:
    """What an address may show once a provider opt-out `action` reached it: No (a
    Cancellation already is one); "not specified" for a single archive/delete, which never
    overwrites No, Cancellation or double opt-in pending."""
    if action in REMOVALS:
        return {NOT_SPECIFIED, NO, CANCELLATION, "3"}
    return {NO, CANCELLATION}
