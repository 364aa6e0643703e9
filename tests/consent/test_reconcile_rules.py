"""The reconciliation's decision (`app.contacts.reconcile.reconcile_kind`), one row per case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.contacts.reconcile import Found, reconcile_kind
from app.contacts.rules import Signal
from providers.base import ProviderEventType as T

START = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # the window read starts here
IN = START + timedelta(minutes=3)  # a change inside the window
OLD = START - timedelta(days=30)


def found(status: str, *, in_list: bool | None = None, opted_in_at: datetime | None = IN) -> Found:
    return Found(status, IN, in_list, opted_in_at)


@pytest.mark.parametrize(
    ("now", "ledger", "expected"),
    [
        # Opt-outs the ledger does not know reach onOffice, whatever it knew before.
        (found("unsubscribed"), Signal("subscribed", OLD), T.unsubscribe),
        (found("blacklisted", in_list=True), Signal("subscribed", OLD), T.unsubscribe),
        (found("blacklisted", in_list=False), Signal("subscribed", OLD), T.unsubscribe),
        (found("unsubscribed"), None, T.unsubscribe),
        (found("cleaned"), Signal("subscribed", OLD), T.cleaned),
        # Already known in the same kind: a list touch, the connector's own write, a webhook
        # that was applied (Brevo's blacklisted and the webhook's unsubscribed are one kind).
        (found("unsubscribed"), Signal("unsubscribed", IN), None),
        (found("blacklisted", in_list=True), Signal("unsubscribed", OLD), None),
        (found("subscribed", in_list=True), Signal("subscribed", OLD), None),
        (found("archived"), Signal("deleted", OLD), None),
        (found("not_in_list", in_list=False), Signal("archived", OLD), None),
        # A re-subscribe after an opt-out (the applier's rules judge its time).
        (found("subscribed"), Signal("unsubscribed", OLD), T.subscribe),
        (found("subscribed"), Signal("pending", OLD), T.subscribe),
        # A new sign-up, only when it signed up within the window.
        (found("subscribed"), None, T.subscribe),
        (found("subscribed", opted_in_at=OLD), None, None),
        (found("subscribed", opted_in_at=None), None, None),
        (found("subscribed", in_list=False), None, None),
        # Removals: only of a subscriber (or a pending one) the ledger knows.
        (found("archived"), Signal("subscribed", OLD), T.deleted),
        (found("not_in_list", in_list=False), Signal("subscribed", OLD), T.deleted),
        (found("archived"), Signal("pending", OLD), T.deleted),
        (found("archived"), Signal("unsubscribed", OLD), None),
        (found("archived"), Signal("cleaned", OLD), None),
        (found("archived"), Signal(None), None),
        (found("archived"), None, None),
        (found("not_in_list", in_list=False), None, None),
        # Not consent: waiting for double opt-in, transactional.
        (found("pending"), Signal("subscribed", OLD), None),
        (found("transactional"), None, None),
        # Another list's contact of the same Brevo account is not ours.
        (found("blacklisted", in_list=False), None, None),
    ],
)
def test_reconcile_kind(now: Found, ledger: Signal | None, expected: T | None) -> None:
    assert reconcile_kind(now, ledger, START) == expected


@pytest.mark.parametrize(
    ("now", "ledger", "pending", "expected"),
    [
        # A webhook told it and its event is not applied yet: not stored again.
        (found("unsubscribed"), Signal("subscribed", OLD), {"unsubscribe"}, None),
        (found("cleaned"), Signal("subscribed", OLD), {"cleaned"}, None),
        (found("archived"), Signal("subscribed", OLD), {"deleted"}, None),
        (found("subscribed"), None, {"subscribe"}, None),
        # A pending event of another kind is other news: the provider's state now is stored.
        (found("unsubscribed"), Signal("subscribed", OLD), {"subscribe"}, T.unsubscribe),
        (found("subscribed"), Signal("unsubscribed", OLD), {"unsubscribe"}, T.subscribe),
        (found("archived"), Signal("subscribed", OLD), {"unsubscribe", "profile"}, T.deleted),
    ],
)
def test_news_the_inbox_holds_is_not_stored_again(
    now: Found, ledger: Signal | None, pending: set[str], expected: T | None
) -> None:
    assert reconcile_kind(now, ledger, START, pending) == expected
