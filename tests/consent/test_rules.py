"""The consent rule on its own (pure functions): every row of the table in docs/architecture.md."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.contacts.rules import (
    Action,
    EventVerdict,
    Signal,
    bounce_known,
    carried_opt_out,
    decide_yes,
    is_removal_burst,
    judge_event,
    may_overwrite,
    may_restore,
    newest,
    observe_onoffice,
    onoffice_target,
    removal_dismissed,
    unseen_opt_out,
)
from app.webhooks.plan import shown_after
from onoffice_client.models import NewsletterStatus as N

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("onoffice", "provider", "action"),
    [
        (Signal("yes"), Signal(None), Action.send),
        (Signal("yes"), Signal("subscribed", at(0)), Action.send),
        (Signal("yes"), Signal("not_in_list", at(0)), Action.send),
        (Signal("yes", at(100)), Signal("pending", at(0)), Action.pending),
        # First sight of "Yes" (no change time) never undoes an opt-out.
        (Signal("yes"), Signal("unsubscribed", at(0)), Action.write_back),
        # Archived/deleted (e.g. "Archive All") is no consent signal: listed, nothing written.
        (Signal("yes"), Signal("archived", at(0)), Action.archived),
        (Signal("yes"), Signal("deleted", at(0)), Action.archived),
        (Signal("yes", at(0)), Signal("archived", at(60)), Action.archived),
        # A bounce is not sent again, even after a change to Yes (only a new email is).
        (Signal("yes"), Signal("cleaned", at(0)), Action.bounced),
        (Signal("yes", at(60)), Signal("cleaned", at(0)), Action.bounced),
        (Signal("yes", at(60)), Signal("hard_bounce", at(0)), Action.bounced),
        # A change to Yes seen after the opt-out is a fresh consent ...
        (Signal("yes", at(60)), Signal("unsubscribed", at(0)), Action.resubscribe),
        (Signal("yes", at(60)), Signal("blacklisted", at(0)), Action.resubscribe),
        (Signal("yes", at(60)), Signal("archived", at(0)), Action.resubscribe),
        # ... but not when it is older, ties, or the opt-out has no time.
        (Signal("yes", at(0)), Signal("unsubscribed", at(60)), Action.write_back),
        (Signal("yes", at(3)), Signal("unsubscribed", at(0)), Action.write_back),
        (Signal("yes", at(60)), Signal("unsubscribed", None), Action.write_back),
    ],
)
def test_decide_yes(onoffice: Signal, provider: Signal, action: Action) -> None:
    assert decide_yes(onoffice, provider) == action


def test_newest_prefers_the_opt_out_on_a_tie_and_the_newer_otherwise() -> None:
    ours = Signal("subscribed", at(0.7))  # the connector's write, to the microsecond
    theirs = Signal("unsubscribed", at(0))  # Mailchimp's last_changed, to the second
    assert newest(ours, theirs).status == "unsubscribed"
    assert newest(Signal("subscribed", at(60)), theirs).status == "subscribed"
    assert newest(Signal("unsubscribed", at(60)), Signal("subscribed", at(0))).status == (
        "unsubscribed"
    )
    assert newest(Signal(None), Signal("subscribed", at(0))).status == "subscribed"
    assert newest(Signal("subscribed"), Signal("unsubscribed")).status == "unsubscribed"


def test_observe_onoffice_times_only_changes() -> None:
    assert observe_onoffice(None, None, "yes", at(5)) == Signal("yes", None)
    assert observe_onoffice("no", at(0), "yes", at(5)) == Signal("yes", at(5))
    assert observe_onoffice("yes", at(1), "yes", at(5)) == Signal("yes", at(1))


def test_not_specified_never_overwrites_no_or_cancellation() -> None:
    assert not may_overwrite(N.no, N.not_specified)
    assert not may_overwrite(N.cancellation, N.not_specified)
    assert may_overwrite(N.yes, N.not_specified)
    assert may_overwrite(N.yes, N.no)
    assert not may_overwrite(N.no, N.no)
    assert onoffice_target("archived") == N.not_specified
    assert onoffice_target("blacklisted") == N.no


def test_not_specified_does_not_overwrite_doi_pending() -> None:
    """D4: "not specified" never overwrites "double opt-in pending" (nor No, Cancellation)."""
    assert not may_overwrite(N.doi_pending, N.not_specified)
    assert may_overwrite(N.doi_pending, N.no)  # a real opt-out still does
    assert shown_after(N.not_specified, "doi_pending") == "doi_pending"


def test_a_bounce_keeps_onoffices_value() -> None:
    assert onoffice_target("cleaned") is None
    assert onoffice_target("hard_bounce") is None
    assert bounce_known(Signal("cleaned", at(0)))
    assert not bounce_known(Signal("unsubscribed", at(0)))
    assert not bounce_known(Signal(None))


@pytest.mark.parametrize(
    ("provider", "onoffice", "allowed"),
    [
        ("archived", [N.yes], True),
        ("deleted", [N.yes, N.not_specified], True),
        ("archived", [N.not_specified], False),  # a single archive applied: nothing to restore
        ("archived", [N.yes, N.no], False),  # a No on a duplicate address wins
        ("archived", [N.yes, N.cancellation], False),
        ("archived", [], False),  # the person left onOffice
        ("unsubscribed", [N.yes], False),  # an opt-out is never "restored"
        ("cleaned", [N.yes], False),
        ("subscribed", [N.yes], False),
    ],
)
def test_may_restore(provider: str, onoffice: list[N], allowed: bool) -> None:
    assert may_restore(provider, onoffice) is allowed


def test_a_dismissed_removal_is_remembered() -> None:
    dismissed = at(30)
    removed = Signal("deleted", at(0))
    assert removal_dismissed(removed, dismissed)
    assert not removal_dismissed(removed, None)
    # Restored or signed up again since: the mark no longer counts.
    assert not removal_dismissed(Signal("subscribed", at(60)), dismissed)
    # The burst's own removal delivered again (within the clock tie): not applied.
    assert judge_event("deleted", at(3), removed, Signal("yes"), dismissed_at=dismissed) == (
        EventVerdict.dismissed
    )
    assert judge_event("deleted", None, removed, Signal("yes"), dismissed_at=dismissed) == (
        EventVerdict.dismissed
    )
    # A removal clearly newer than the dismissed one is the member's own (signed up again
    # since, archived again): it applies (soak I2 example, session 12).
    assert judge_event("deleted", at(90), removed, Signal("yes"), dismissed_at=dismissed) == (
        EventVerdict.apply
    )
    assert judge_event("deleted", at(3), removed, Signal("yes")) == EventVerdict.apply
    # An unsubscribe of the same person is an opt-out and still applies.
    assert judge_event("unsubscribe", at(90), removed, Signal("yes"), dismissed_at=dismissed) == (
        EventVerdict.apply
    )


@pytest.mark.parametrize(
    ("kind", "occurred", "provider", "onoffice", "verdict"),
    [
        ("unsubscribe", at(60), Signal("subscribed", at(0)), Signal("yes"), EventVerdict.apply),
        # An old opt-out is confirmed at the provider, never dropped on time alone.
        ("unsubscribe", at(0), Signal("subscribed", at(60)), Signal("yes"), EventVerdict.confirm),
        ("deleted", at(0), Signal("subscribed", at(60)), Signal("yes"), EventVerdict.confirm),
        # A redelivered old subscribe after a newer unsubscribe is stale.
        ("subscribe", at(0), Signal("unsubscribed", at(60)), Signal("no"), EventVerdict.stale),
        ("subscribe", at(120), Signal("unsubscribed", at(60)), Signal("no"), EventVerdict.apply),
        # A subscribe older than an explicit "No" in onOffice is stale too.
        ("subscribe", at(0), Signal(None), Signal("no", at(60)), EventVerdict.stale),
    ],
)
def test_judge_event(
    kind: str, occurred: datetime, provider: Signal, onoffice: Signal, verdict: EventVerdict
) -> None:
    assert judge_event(kind, occurred, provider, onoffice) == verdict


@pytest.mark.parametrize(
    ("ledger", "read", "onoffice", "expected"),
    [
        # A bounced member unsubscribed since (webhook lost): written back.
        (Signal("cleaned", at(0)), Signal("unsubscribed", at(60)), Signal("not_specified"), True),
        (Signal("subscribed", at(0)), Signal("blacklisted", at(60)), Signal("no", at(10)), True),
        (Signal(None), Signal("unsubscribed", at(60)), Signal("absent"), True),
        # The ledger already records an unsubscribe (the connector's own, or Brevo's blacklist).
        (Signal("unsubscribed", at(0)), Signal("blacklisted", at(60)), Signal("no"), False),
        (Signal("unsubscribed", at(0)), Signal("unsubscribed", at(60)), Signal("no"), False),
        # Not consent: bounces and removals are not written back as an unsubscribe.
        (Signal("subscribed", at(0)), Signal("cleaned", at(60)), Signal("not_specified"), False),
        (Signal("subscribed", at(0)), Signal("archived", at(60)), Signal("not_specified"), False),
        # Older than what the ledger knows (a subscribe event applied during the run).
        (Signal("subscribed", at(60)), Signal("unsubscribed", at(0)), Signal("yes"), False),
        # A fresh onOffice Yes after it took it back; a tie goes to the opt-out.
        (Signal("cleaned", at(0)), Signal("unsubscribed", at(60)), Signal("yes", at(90)), False),
        (Signal("cleaned", at(0)), Signal("unsubscribed", at(60)), Signal("yes", at(62)), True),
    ],
)
def test_unseen_opt_out(ledger: Signal, read: Signal, onoffice: Signal, expected: bool) -> None:
    """A known person with no newsletter-Yes address in the run: an unsubscribe the run read
    and the ledger has not recorded goes to onOffice (No over "not specified")."""
    assert unseen_opt_out(ledger, read, onoffice) is expected


@pytest.mark.parametrize(
    ("seconds", "burst"),
    [
        ([0, 0.1, 0.2], True),  # the threshold within the window
        ([0, 0.1], False),  # fewer than the threshold
        ([0, 0.1, 0.2, 3.5], True),  # a straggler beyond the window does not undo the burst
        ([0, 1.5, 3.0, 4.5], False),  # never three within the window
        ([0, 2, 4, 6, 8, 10], True),  # twice the threshold pending at once, however spread
    ],
)
def test_a_removal_burst_is_the_threshold_within_the_window(
    seconds: list[float], burst: bool
) -> None:
    assert is_removal_burst([at(s) for s in seconds], threshold=3, window_s=1.0) is burst


@pytest.mark.parametrize(
    ("signals", "carried"),
    [
        ([], None),
        ([(Signal("archived", at(0)), None)], 0),
        ([(Signal("deleted", at(0)), None)], 0),
        ([(Signal("unsubscribed", at(0)), None)], 0),
        ([(Signal("blacklisted", None), None)], 0),
        # A bounce is not consent; a subscribe is nothing to carry.
        ([(Signal("cleaned", at(0)), None)], None),
        ([(Signal("subscribed", at(0)), None)], None),
        # A removal a user dismissed as an Archive-All clean-up said nothing of the person; an
        # unsubscribe is one's own word whatever a user did with a burst.
        ([(Signal("archived", at(0)), at(10))], None),
        ([(Signal("unsubscribed", at(0)), at(10))], 0),
        # The newest signal across the lists decides: a later sign-up at another list wins...
        ([(Signal("archived", at(0)), None), (Signal("subscribed", at(60)), None)], None),
        # ... and a later opt-out wins over an older subscribe; a tie goes to the opt-out.
        ([(Signal("subscribed", at(0)), None), (Signal("unsubscribed", at(60)), None)], 1),
        ([(Signal("subscribed", at(0)), None), (Signal("archived", at(3)), None)], 1),
    ],
)
def test_carried_opt_out(
    signals: list[tuple[Signal, datetime | None]], carried: int | None
) -> None:
    """What a list the connection switches or reconnects to starts from, per person (the
    soak's I1 of session 11; tests/consent/test_removal_across_switch.py over HTTP)."""
    assert carried_opt_out(signals) == carried
