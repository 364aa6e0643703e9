"""The current decision and its rule, from a ledger row (`app.contacts.explain`, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.contacts.explain import RULES, explain
from app.db.models import Contact

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def row(
    onoffice: str | None,
    onoffice_at: datetime | None,
    provider: str | None,
    provider_at: datetime | None,
    **kw: object,
) -> Contact:
    return Contact(
        connection_id=1,
        address_id=7,
        email="anna@example.de",
        onoffice_status=onoffice,
        onoffice_changed_at=onoffice_at,
        provider_status=provider,
        provider_changed_at=provider_at,
        **kw,
    )


LATER = T0 + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("contact", "rule"),
    [
        (row("yes", None, "subscribed", T0), "onoffice_yes"),
        (row("yes", T0, "unsubscribed", LATER), "provider_opt_out_newer"),
        (row("yes", None, "unsubscribed", T0), "provider_opt_out_newer"),  # unknown: opt-out
        (row("yes", LATER, "unsubscribed", T0), "fresh_yes"),
        (row("yes", T0, "cleaned", T0), "bounced"),
        (row("yes", T0, "archived", LATER), "archived"),
        (row("yes", T0, "archived", LATER, removal_dismissed_at=LATER), "removal_dismissed"),
        (row("yes", T0, "pending", T0), "pending"),
        (row("no", T0, "subscribed", LATER), "provider_subscribe_newer"),
        (row("no", LATER, "subscribed", T0), "onoffice_opt_out"),
        (row("no", T0, "subscribed", T0 + timedelta(seconds=2)), "onoffice_opt_out"),  # a tie
        (row("absent", T0, "unsubscribed", T0), "left_onoffice"),
        (row("not_specified", T0, "deleted", T0), "archived"),
        (row("not_specified", T0, "unsubscribed", T0), "onoffice_not_yes"),
        (None, "unknown"),
    ],
)
def test_the_rule_of_the_current_decision(contact: Contact | None, rule: str) -> None:
    verdict = explain(contact)
    assert verdict.rule == rule
    assert verdict.subscribed is RULES[rule]


def test_the_verdict_names_the_address_and_both_signals() -> None:
    verdict = explain(row("no", LATER, "subscribed", T0))
    assert verdict.address_id == 7
    assert (verdict.onoffice, verdict.provider) == ("no", "subscribed")
    assert verdict.onoffice_at == LATER and verdict.provider_at == T0
