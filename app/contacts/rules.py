"""The consent rule, in one place (pure functions; no I/O).

For each email of a connection the ledger (`contact` row) keeps the latest consent signal of
each side with its time:

* onOffice: the Newsletter value (`yes`, `no`, `cancellation`, `not_specified`, ..., or
  `absent` when a full sync no longer finds the address among the newsletter-Yes addresses) and
  the time the connector saw it change. A value seen for the first time has no change time: it
  is not proof of a fresh decision (a first sync into an audience with opt-outs must not undo
  them).
* the provider: its state (`providers.base.ProviderState`: `subscribed`, `pending`,
  `unsubscribed`, `blacklisted`, `cleaned`, `archived`, `deleted`, ...; a StrEnum, stored as
  its string) and the provider's `last_changed` / event time.

The newer signal wins. A provider opt-out therefore flows to onOffice (No) and is never undone
by a stale "Yes". Only an onOffice change to "Yes" seen after the opt-out is a fresh consent: it
subscribes again (Brevo: lifts the blacklist; Mailchimp may refuse for compliance, then the
contact is listed with the reason). When a time is unknown, the opt-out wins.

Two provider states are not consent and never change onOffice's Newsletter value:

* archived/deleted members found by a full sync (Mailchimp's "Archive All" is a cost clean-up,
  not an opt-out): neither re-added nor written back, listed as "archived at the provider"
  until a user restores them (`may_restore`) or onOffice changes to Yes after the archive. Only
  a single archive/delete *event* (not part of a held burst) makes onOffice "not specified",
  and a removal a user dismissed (a held Archive-All burst) is remembered per member:
  its events are not applied again (`judge_event`).
* bounces (Mailchimp `cleaned`, Brevo hard bounce): onOffice keeps its value, an activity
  records the bounce, and the email is not sent again (a changed email is a new contact).

"Not specified" never overwrites No, Cancellation or double opt-in pending.

The full sync, the incremental push and the webhook applier all decide through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from app.db.base import aware as aware  # re-exported: the rules compare aware times
from onoffice_client.models import NewsletterStatus
from providers.base import ProviderState

_S = ProviderState
SUBSCRIBED = _S.subscribed
PENDING = _S.pending
# Provider states that mean "do not send": each is an opt-out.
OPT_OUT_STATES = frozenset(
    {_S.unsubscribed, _S.blacklisted, _S.cleaned, _S.hard_bounce, _S.archived, _S.deleted}
)
BOUNCE_STATES = frozenset({_S.cleaned, _S.hard_bounce})
REMOVED_STATES = frozenset({_S.archived, _S.deleted})
# onOffice values that a provider-side deletion must not overwrite.
EXPLICIT_NO = frozenset({NewsletterStatus.no.name, NewsletterStatus.cancellation.name})
PROTECTED_FROM_REMOVAL = EXPLICIT_NO | {NewsletterStatus.doi_pending.name}
YES = NewsletterStatus.yes.name


# Times from two clocks (the provider's, often to the second, and the connector's) are only
# ordered when they are further apart than this; closer ones are a tie, and a tie goes to the
# opt-out.
TIE = timedelta(seconds=5)


class Action(StrEnum):
    send = "send"  # create/update the contact as subscribed
    resubscribe = "resubscribe"  # fresh onOffice consent after a provider opt-out: lift it
    write_back = "write_back"  # the provider opt-out is newer: onOffice gets it, nothing is sent
    bounced = "bounced"  # cleaned / hard bounce: onOffice keeps its value, nothing is sent
    archived = "archived"  # archived/deleted at the provider: nothing sent, nothing written
    pending = "pending"  # double opt-in not confirmed: nothing is sent


@dataclass(frozen=True)
class Signal:
    status: str | None
    at: datetime | None = None


def newer(a: datetime | None, b: datetime | None) -> bool:
    """`a` is newer than `b` by more than the clock tie; an unknown time is never newer than a
    known one."""
    a, b = aware(a), aware(b)
    if a is None:
        return False
    return b is None or a - b > TIE


def newest(*signals: Signal) -> Signal:
    """The newest known provider signal. An untimed signal counts only when nothing else is
    known; between signals that tie (or are both untimed) an opt-out wins."""
    known = [s for s in signals if s.status is not None]
    if not known:
        return Signal(None)
    timed = [s for s in known if s.at is not None] or known
    best = timed[0]
    for candidate in timed[1:]:
        if newer(candidate.at, best.at):
            best = candidate
        elif not newer(best.at, candidate.at) and candidate.status in OPT_OUT_STATES:
            best = candidate  # a tie: the opt-out wins
    return best


def is_opt_out(status: str | None) -> bool:
    return status in OPT_OUT_STATES


def onoffice_value(newsletter: NewsletterStatus | None, *, active: bool = True) -> str:
    """The ledger's name for an onOffice Newsletter value (`absent`: inactive or deleted)."""
    if not active or newsletter is None:
        return "absent"
    return newsletter.name


def observe_onoffice(
    previous: str | None, previous_at: datetime | None, value: str, now: datetime
) -> Signal:
    """The onOffice signal after seeing `value`: a change gets the time it was first seen; a
    first sighting has no time (it proves no fresh decision)."""
    if previous is None:
        return Signal(value, None)
    if previous != value:
        return Signal(value, now)
    return Signal(value, previous_at)


def decide_yes(onoffice: Signal, provider: Signal) -> Action:
    """onOffice says Yes: what to do at the provider."""
    state = provider.status
    if state is None or state not in OPT_OUT_STATES | {PENDING}:
        return Action.send  # unknown, subscribed, transactional, not in the list
    if state == PENDING:
        return Action.pending
    if state in BOUNCE_STATES:
        return Action.bounced  # not sent again until the email changes in onOffice
    if provider.at is not None and newer(onoffice.at, provider.at):
        return Action.resubscribe  # an explicit onOffice change after the opt-out
    return Action.archived if state in REMOVED_STATES else Action.write_back


UNSUBSCRIBED_STATES = frozenset({_S.unsubscribed, _S.blacklisted})


def unseen_opt_out(ledger: Signal, read: Signal, onoffice: Signal) -> bool:
    """A known person none of whose addresses the full sync read as newsletter-Yes: whether the
    run's read of the list (`read`) shows an unsubscribe the ledger has not recorded (its
    webhook was lost), e.g. a bounced member unsubscribed since. It then goes to onOffice as its
    webhook would have ("No", never over No or Cancellation, so "not specified" becomes No).
    Bounces and removals are not consent; nothing older than the ledger's provider signal, and
    nothing a fresh onOffice Yes after it took back."""
    if read.status not in UNSUBSCRIBED_STATES or ledger.status in UNSUBSCRIBED_STATES:
        return False
    if newer(ledger.at, read.at):
        return False
    return not (onoffice.status == YES and newer(onoffice.at, read.at))


# What a person's newest provider signal at another list of the customer may carry into the
# list a connection switches or reconnects to (`carried_opt_out`).
CARRIED_STATES = UNSUBSCRIBED_STATES | REMOVED_STATES


def carried_opt_out(
    signals: Sequence[tuple[Signal, datetime | None]],
) -> int | None:
    """Of a person's provider signals at the lists the customer's connection has left (each
    with the time a user dismissed it as part of an Archive-All burst, or None), the index of
    the one a new list's ledger starts from, or None.

    The newest signal counts (a tie goes to the opt-out, `newest`); it is carried when it is
    an opt-out or a removal: the new list's first full sync then decides the person as the old
    list would (a Yes that did not change since is no fresh consent; a removal is listed as
    archived, not re-added), instead of as a stranger. A bounce is no consent, and a removal a
    user dismissed as an Archive-All clean-up said nothing of the person: neither is carried."""
    if not signals:
        return None
    best = newest(*(signal for signal, _ in signals))
    index = next(
        (i for i, (signal, _) in enumerate(signals) if signal == best and signal.status), None
    )
    if index is None or best.status not in CARRIED_STATES:
        return None
    if best.status in REMOVED_STATES and signals[index][1] is not None:
        return None
    return index


def takes_carried(own: Signal, carried: Signal) -> bool:
    """Whether a row a list's own ledger brought back (a return to it) takes the signal
    `carried_opt_out` chose at the lists left: it knows none, or the carried one is the newer
    (a tie goes to the opt-out, `newest`)."""
    return own.status is None or (newest(own, carried) == carried and own != carried)


def onoffice_target(provider_state: str) -> NewsletterStatus | None:
    """What onOffice's Newsletter field becomes for a provider event: No for an opt-out,
    "not specified" for a single archive/delete, nothing for a bounce (onOffice keeps it)."""
    if provider_state in BOUNCE_STATES:
        return None
    if provider_state in REMOVED_STATES:
        return NewsletterStatus.not_specified
    return NewsletterStatus.no


def may_overwrite(current: NewsletterStatus | None, target: NewsletterStatus) -> bool:
    """Whether onOffice's value should become `target`: "not specified" never overwrites No,
    Cancellation or double opt-in pending."""
    if current == target:
        return False
    if target == NewsletterStatus.not_specified:
        return current is None or current.name not in PROTECTED_FROM_REMOVAL
    return True


def may_restore(provider_status: str | None, onoffice: Sequence[NewsletterStatus | None]) -> bool:
    """Whether a user may restore a member archived/deleted at the provider: the person's
    onOffice addresses (`onoffice`: the Newsletter value of each active one) still say Yes,
    and none of them says No or Cancellation."""
    if provider_status not in REMOVED_STATES:
        return False
    names = {value.name for value in onoffice if value is not None}
    return YES in names and not names & EXPLICIT_NO


class EventVerdict(StrEnum):
    apply = "apply"
    stale = "stale"  # older than the state the ledger knows
    confirm = "confirm"  # an opt-out that looks older: re-read the provider before dropping it
    dismissed = "dismissed"  # a removal of a member whose Archive-All removal a user dismissed


def bounce_known(ledger_provider: Signal) -> bool:
    """The ledger already records a bounce of this email: a later bounce signal (the full
    sync's read, a redelivery) writes no second activity."""
    return ledger_provider.status in BOUNCE_STATES


def is_removal_burst(received: Sequence[datetime], threshold: int, window_s: float) -> bool:
    """Whether pending removals (archives/deletes, by the time each was received) are a burst
    such as Mailchimp's "Archive All": `threshold` of them received within `window_s` of each
    other, however far a straggler lies from them (or, however spread, twice `threshold` at
    once). Counting the span of all of them instead let one late removal, seen together with
    the others by a drain that came late, turn a burst into single archives."""
    times = sorted(received)
    if len(times) < threshold:
        return False
    if len(times) >= 2 * threshold:
        return True
    window = timedelta(seconds=window_s)
    return any(
        times[i + threshold - 1] - times[i] <= window for i in range(len(times) - threshold + 1)
    )


def removal_dismissed(ledger_provider: Signal, dismissed_at: datetime | None) -> bool:
    """A user dismissed this member's removal (a held Archive-All burst) and the provider has
    not changed it since (a restore or a new sign-up clears the mark)."""
    return dismissed_at is not None and ledger_provider.status in REMOVED_STATES


def judge_event(
    kind: str,
    occurred_at: datetime | None,
    ledger_provider: Signal,
    ledger_onoffice: Signal,
    *,
    dismissed_at: datetime | None = None,
) -> EventVerdict:
    """Whether a provider consent event still says something new.

    An opt-out is never dropped on time alone (it is confirmed at the provider when it looks
    old); a subscribe older than the known provider state, or older than an explicit onOffice
    "No", is stale. An archive/delete of a member whose removal a user dismissed is not
    applied (its redelivery, or a late event of the same burst): one clearly newer than the
    dismissed removal is a removal of its own (the member signed up again since, unseen by
    the ledger, and was archived again), and the seed's rule applies to it."""
    if (
        kind == "deleted"
        and removal_dismissed(ledger_provider, dismissed_at)
        and not newer(occurred_at, ledger_provider.at)
    ):
        return EventVerdict.dismissed
    if kind in ("unsubscribe", "deleted", "cleaned", "hard_bounce"):
        if ledger_provider.at is not None and newer(ledger_provider.at, occurred_at):
            return EventVerdict.confirm
        return EventVerdict.apply
    if kind == "subscribe":
        if (
            ledger_provider.at is not None
            and ledger_provider.status in OPT_OUT_STATES
            and not newer(occurred_at, ledger_provider.at)
        ):
            return EventVerdict.stale  # not clearly after the opt-out the ledger knows
        if (
            ledger_onoffice.status not in (None, YES)
            and ledger_onoffice.at is not None
            and newer(ledger_onoffice.at, occurred_at)
        ):
            return EventVerdict.stale
    return EventVerdict.apply


def event_state(kind: str) -> str | None:
    """The provider state a consent event reports."""
    return {
        "subscribe": SUBSCRIBED,
        "unsubscribe": _S.unsubscribed,
        "deleted": _S.deleted,
        "cleaned": _S.cleaned,
        "hard_bounce": _S.hard_bounce,
    }.get(kind)
