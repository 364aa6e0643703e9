"""`app/contacts/confirm.py`: a provider event mapped, with the provider's current state, to the
signal to apply (the state's kind and time) or to "not confirmed" (pure; no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.contacts.confirm import (
    Confirmation,
    confirm,
    confirmation_list,
    ledger_learns,
    needs_confirmation,
    shown_in,
)
from app.contacts.rules import Signal
from providers.base import ProviderContact, ProviderEvent, ProviderEventType

T = ProviderEventType
FIRED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHANGED = datetime(2026, 3, 1, 11, 59, 58, tzinfo=UTC)


def event(kind: ProviderEventType, raw: str | None = None, **kw: object) -> ProviderEvent:
    return ProviderEvent.model_validate(
        {
            "type": kind,
            "email": "p@example.de",
            "occurred_at": FIRED,
            "raw_type": raw or kind.value,
            "dedupe_key": "k",
        }
        | kw
    )


def state(status: str | None, email: str = "p@example.de") -> ProviderContact:
    return ProviderContact(email=email, status=status, last_changed=CHANGED)


@pytest.mark.parametrize(
    ("kind", "status", "applied"),
    [
        (T.subscribe, "subscribed", T.subscribe),
        (T.unsubscribe, "unsubscribed", T.unsubscribe),
        (T.unsubscribe, "blacklisted", T.unsubscribe),
        (T.unsubscribe, "archived", T.deleted),  # archived by now: applied as a removal
        (T.unsubscribe, None, T.deleted),  # no such member (deleted for good)
        (T.deleted, "archived", T.deleted),
        (T.deleted, "not_in_list", T.deleted),
        (T.deleted, "unsubscribed", T.unsubscribe),
        (T.cleaned, "cleaned", T.cleaned),
    ],
)
def test_a_state_that_agrees_is_applied_as_the_state(
    kind: ProviderEventType, status: str | None, applied: ProviderEventType
) -> None:
    result = confirm(event(kind), state(status) if status else None, "Mailchimp")
    assert result.reason is None and result.event is not None
    assert result.event.type == applied
    assert result.event.occurred_at == (CHANGED if status else FIRED)  # the state's time
    assert result.may_create == (applied == T.subscribe)


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        (T.subscribe, None, "Mailchimp shows no such contact, not subscribed"),
        (T.subscribe, "unsubscribed", "Mailchimp shows unsubscribed, not subscribed"),
        (T.subscribe, "pending", "Mailchimp shows pending, not subscribed"),
        (T.unsubscribe, "subscribed", "Mailchimp shows subscribed, not an opt-out"),
        (T.deleted, "subscribed", "Mailchimp shows subscribed, not an opt-out"),
        (T.cleaned, "pending", "Mailchimp shows pending, not an opt-out"),
    ],
)
def test_a_state_that_contradicts_is_not_confirmed(
    kind: ProviderEventType, status: str | None, reason: str
) -> None:
    result = confirm(event(kind), state(status) if status else None, "Mailchimp")
    assert result.event is None and result.reason == f"not confirmed: {reason}"


def test_an_email_change_needs_the_old_address_gone_and_the_new_one_there() -> None:
    change = event(T.email_changed, "upemail", new_email="new@example.de")
    new = state("subscribed", "new@example.de")
    assert confirm(change, None, "Mailchimp", new_state=new).event == change
    forged = confirm(change, state("subscribed"), "Mailchimp", new_state=None)
    assert forged.reason == "not confirmed: Mailchimp has no contact new@example.de"
    kept = confirm(change, state("subscribed"), "Mailchimp", new_state=new)
    assert kept.reason == "not confirmed: Mailchimp still has p@example.de (subscribed)"


def test_a_brevo_email_change_needs_the_new_address_in_the_list() -> None:
    change = event(T.email_changed, "contact_updated", new_email="new@example.de")
    in_list = state("subscribed", "new@example.de")
    assert confirm(change, None, "Brevo", new_state=in_list).event == change
    elsewhere = confirm(change, None, "Brevo", new_state=state("not_in_list", "new@example.de"))
    shown = "Brevo shows new@example.de not_in_list, not in the list"
    assert elsewhere.reason == f"not confirmed: {shown}"


def test_a_profile_change_applies_what_the_state_says() -> None:
    profile = event(T.profile, "contact_updated")
    known = Signal("subscribed", CHANGED)
    blacklisted = confirm(profile, state("blacklisted"), "Brevo", ledger=known).event
    assert blacklisted is not None and blacklisted.type == T.unsubscribe
    removed = confirm(profile, state("not_in_list"), "Brevo", ledger=known).event
    assert removed is not None and removed.type == T.deleted
    # Not known in the list: a removal from it says nothing (Brevo's events are account-wide).
    stranger = confirm(profile, state("not_in_list"), "Brevo").event
    assert stranger is not None and stranger.type == T.profile
    # Subscribed: a re-subscribe only after an opt-out the ledger knows, never a new address.
    again = confirm(profile, state("subscribed"), "Brevo", ledger=Signal("unsubscribed", FIRED))
    assert again.event is not None and again.event.type == T.subscribe and not again.may_create
    same = confirm(profile, state("subscribed"), "Brevo", ledger=known).event
    assert same is not None and same.type == T.profile
    assert confirm(profile, None, "Brevo").reason == "not confirmed: Brevo has no such contact"


def test_the_products_own_events_and_activities_are_not_confirmed() -> None:
    assert not needs_confirmation(event(T.unsubscribe, "reconcile"))
    assert not needs_confirmation(event(T.unsubscribe, "person"))
    for kind in (T.delivered, T.opened, T.clicked, T.hard_bounce, T.ignored):
        assert not needs_confirmation(event(kind))
    own = event(T.deleted, "reconcile")
    assert confirm(own, state("subscribed"), "Mailchimp").event == own


NEW = "new@example.de"
MOVE = event(T.email_changed, "upemail", new_email=NEW)


@pytest.mark.parametrize(
    ("change", "current", "new_state", "shown"),
    [
        (event(T.subscribe), None, None, "none"),
        (event(T.subscribe), state("pending"), None, "pending"),
        (event(T.unsubscribe), state("subscribed"), None, "subscribed"),
        (event(T.cleaned), state("transactional"), None, "transactional"),
        (event(T.profile, "contact_updated"), None, None, "none"),
        (MOVE, None, None, "none"),
        (MOVE, None, state("archived", NEW), "archived"),
        (MOVE, state("subscribed"), state("subscribed", NEW), "subscribed"),
        (event(T.unsubscribe), state(None), None, "unknown"),
    ],
)  # fmt: skip
def test_what_the_provider_showed_is_read_back_from_every_reason(
    change: ProviderEvent,
    current: ProviderContact | None,
    new_state: ProviderContact | None,
    shown: str,
) -> None:
    """The status page names what the provider showed in the user's language."""
    result = confirm(change, current, "Brevo", new_state=new_state)
    assert result.event is None and result.reason is not None
    assert shown_in(result.reason) == shown


@pytest.mark.parametrize(
    ("named", "per_list", "expected"),
    [
        ("list-b", True, "list-b"),  # a Mailchimp event of the list the connection left
        ("list-a", True, "list-a"),
        (None, True, "list-a"),
        ("list-b", False, "list-a"),  # Brevo: account-wide, confirmed at the connection's list
    ],
)
def test_an_event_is_confirmed_at_the_list_it_was_made_at(
    named: str | None, per_list: bool, expected: str
) -> None:
    removal = event(T.deleted, raw="unsubscribe", list_id=named)
    assert confirmation_list(removal, "list-a", webhooks_per_list=per_list) == expected


def test_the_ledger_keeps_its_own_lists_state_for_an_event_of_another_list() -> None:
    confirmed, ledger = Signal("archived", CHANGED), Signal("subscribed", FIRED)
    here = Confirmation(event(T.deleted))
    there = Confirmation(event(T.deleted), other_list=True)
    assert ledger_learns(here, confirmed, ledger) == confirmed
    assert ledger_learns(None, confirmed, ledger) == confirmed
    assert ledger_learns(there, confirmed, ledger) == ledger
