"""`reconciled` is true only when proven (app/syncs/numbers.py): one test per rule, with the
false and null cases."""

from __future__ import annotations

from typing import Any

import pytest

from app.db.models import SyncRun, SyncRunStatus
from app.syncs.numbers import reconciliation, sync_counts


def run(**kw: Any) -> SyncRun:
    """A completed run of 10 addresses that reconciles; `kw` changes one thing."""
    values: dict[str, Any] = dict(
        status=SyncRunStatus.completed,
        onoffice_newsletter_total=10,
        addresses_total=10,
        out_of_scope=0,
        created=3, updated=1, unchanged=1, synced_unspecified=0,
        duplicates=1, invalid_emails=1, missing_emails=0, rejected=1,
        opted_out=1, pending_optin=0, bounced=0, archived=1,
        held_unsubscribes=0, provider_subscribed=5, drift=0, tags_pulled=0, unsubscribed=0,
    )  # fmt: skip
    values.update(kw)
    return SyncRun(**values)


def test_a_proven_run_reconciles() -> None:
    assert reconciliation(run()) == (True, None, {})
    counts = sync_counts(run())
    assert counts.reconciled is True and counts.reconciled_reason is None


@pytest.mark.parametrize("category", ["pending_optin", "bounced", "archived", "opted_out"])
def test_every_category_is_part_of_the_sum(category: str) -> None:
    # One address more in a category than processed: the sum no longer adds up.
    broken = run(**{category: getattr(run(), category) + 1})
    assert reconciliation(broken)[:2] == (False, "sum")


def test_missing_emails_count_in_the_sum() -> None:
    assert reconciliation(run(invalid_emails=0, missing_emails=1))[0] is True
    assert reconciliation(run(missing_emails=1))[:2] == (False, "sum")


@pytest.mark.parametrize("status", [SyncRunStatus.queued, SyncRunStatus.running])
def test_an_unfinished_run_is_not_known_to_reconcile(status: str) -> None:
    assert reconciliation(run(status=status))[:2] == (None, "not_finished")


@pytest.mark.parametrize("status", [SyncRunStatus.failed, SyncRunStatus.cancelled])
def test_a_failed_or_cancelled_run_is_not_known_to_reconcile(status: str) -> None:
    verdict, code, params = reconciliation(run(status=status))
    assert (verdict, code) == (None, "not_completed") and params["status"] == f"@ui.st_{status}"


def test_held_unsubscribes_do_not_reconcile() -> None:
    # onOffice 0 Yes, 40 subscribed at the provider held back by the safety valve.
    held = run(held_unsubscribes=40, provider_subscribed=45, drift=0)
    assert reconciliation(held)[:2] == (False, "held")


def test_processed_must_equal_onoffices_total() -> None:
    assert reconciliation(run(addresses_total=11))[:2] == (False, "onoffice_total")
    assert reconciliation(run(addresses_total=None))[:2] == (None, "onoffice_total_unknown")
    # Addresses outside the connection's scope are part of onOffice's total.
    assert reconciliation(run(addresses_total=12, out_of_scope=2))[0] is True


def test_an_unknown_provider_count_is_not_reconciled() -> None:
    # The drift count failed: nothing is proven about the provider's side.
    assert reconciliation(run(provider_subscribed=None, drift=None))[:2] == (
        None,
        "provider_unknown",
    )


def test_drift_does_not_reconcile() -> None:
    verdict, code, params = reconciliation(run(drift=-2, provider_subscribed=3))
    assert (verdict, code) == (False, "drift") and params["drift"] == "-2"


def test_the_reason_is_shown_in_both_languages() -> None:
    german = sync_counts(run(held_unsubscribes=3), "de").reconciled_reason
    english = sync_counts(run(held_unsubscribes=3), "en").reconciled_reason
    assert german and "zurückgehalten" in german and "3" in german
    assert english and "held back" in english
    failed = sync_counts(run(status=SyncRunStatus.failed), "de").reconciled_reason
    assert failed and "fehlgeschlagen" in failed
