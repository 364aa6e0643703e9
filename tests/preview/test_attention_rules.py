"""The "needs attention" panel's rules (app/attention/rules.py): each item appears exactly when
its condition holds, names what to do, in German and English."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from app.attention.rules import attention
from app.connections.schemas import ConnectionRead
from app.status.schemas import (
    PendingWork,
    Reconciliation,
    ScopeStatus,
    SideCounts,
    Status,
    WebhookHealth,
)
from app.syncs.schemas import SyncCounts, SyncProgress, SyncRunRead

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def run(status: str = "completed", **counts: Any) -> SyncRunRead:
    values: dict[str, Any] = dict(
        onoffice_newsletter_total=3, synced=3, created=3, updated=0, unchanged=0, duplicates=0,
        invalid_emails=0, missing_emails=0, rejected=0, tags_pulled=0, unsubscribed=0,
        reconciled=True, provider_subscribed=3, drift=0,
    )  # fmt: skip
    values.update(counts)
    progress = SyncProgress(
        phase="done", addresses_read=3, batches_total=1, batches_done=1, reading_done=True,
        percent=100.0,
    )  # fmt: skip
    return SyncRunRead(
        id=7, status=status, created_at=NOW, started_at=NOW, finished_at=NOW, duration_s=1.0,
        error="onOffice: 500" if status == "failed" else None, progress=progress,
        counts=SyncCounts(**values),
    )  # fmt: skip


def connection() -> ConnectionRead:
    fields = ConnectionRead.model_fields
    values: dict[str, Any] = {name: None for name, f in fields.items() if not f.is_required()}
    values |= {name: "x" for name, f in fields.items() if f.is_required() and f.annotation is str}
    values |= {"provider": "mailchimp", "list_id": "abc"}
    return ConnectionRead.model_construct(**values)


def status(**kw: Any) -> Status:
    done = run()
    values: dict[str, Any] = dict(
        connected=True, connection=connection(),
        counts=SideCounts(onoffice_newsletter_total=3, provider_contacts=3, synced_contacts=3),
        last_sync=done, last_completed_sync=done,
        pending=PendingWork(sync_batches=0, inbound_events=0, failed_inbound_events=0),
        reconciliation=Reconciliation(result="ok", interval_s=900),
        webhook=WebhookHealth(
            state="ok", summary="OK", checked_at=NOW, repaired_at=None, last_event_at=None
        ),
        scope=ScopeStatus(kind="customer", text="all", newsletter_addresses=3),
    )  # fmt: skip
    values.update(kw)
    return Status(**values)


def codes(found: Status, lang: str = "en") -> list[str]:
    return [item.code for item in attention(found, lang)]


def test_a_healthy_connection_needs_nothing() -> None:
    assert codes(status()) == []
    assert codes(status(connected=False, connection=None)) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"last_sync": run(held_unsubscribes=40, reconciled=False)}, "held_unsubscribes"),
        (
            {"pending": PendingWork(
                sync_batches=0, inbound_events=0, failed_inbound_events=0, held_inbound_events=25
            )},
            "held_events",
        ),
        ({"last_completed_sync": None, "last_sync": None}, "first_sync"),
        ({"last_sync": run("failed")}, "failed_run"),
        (
            {"webhook": WebhookHealth(
                state="broken", summary="broken", checked_at=NOW, repaired_at=None,
                last_event_at=None, error="401 API key invalid",
            )},
            "webhook",
        ),
        ({"reconciliation": Reconciliation(result="key_failed", interval_s=900)}, "provider_key"),
        (
            {"reconciliation": Reconciliation(result="failed", interval_s=900, error="503")},
            "reconcile_failed",
        ),
        (
            {"pending": PendingWork(sync_batches=0, inbound_events=0, failed_inbound_events=2)},
            "failed_events",
        ),
        (
            {"scope": ScopeStatus(
                kind="group_users", text="g", newsletter_addresses=None, waiting="Waiting: g"
            )},
            "scope_waiting",
        ),
        ({"last_completed_sync": run(drift=2, reconciled=False)}, "drift"),
        (
            {"last_completed_sync": run(
                reconciled=False, reconciled_code="sum", reconciled_reason="3 ≠ 4"
            )},
            "not_reconciled",
        ),
    ],
)  # fmt: skip
def test_each_item_appears_when_its_condition_holds(changes: dict[str, Any], code: str) -> None:
    found = attention(status(**changes), "de")
    assert [item.code for item in found] == [code]
    (item,) = found
    assert item.text and item.action and item.action != item.text
    english = attention(status(**changes), "en")[0]
    assert english.action != item.action  # both languages


def test_no_first_sync_item_for_an_empty_list_or_while_a_run_is_active() -> None:
    empty = SideCounts(onoffice_newsletter_total=None, provider_contacts=0, synced_contacts=0)
    assert codes(status(counts=empty, last_completed_sync=None, last_sync=None)) == []
    assert codes(status(last_completed_sync=None, last_sync=run("running"))) == []


def test_held_drift_is_not_reported_twice_as_not_reconciled() -> None:
    held = run(held_unsubscribes=4, reconciled=False, reconciled_code="held")
    assert codes(status(last_sync=held, last_completed_sync=held)) == ["held_unsubscribes"]
