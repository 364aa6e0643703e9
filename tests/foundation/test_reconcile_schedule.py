"""The reconciliation's schedule: the interval setting, when a connection is due (backing off
after failures), and the sweep's seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from app.config import Environment, Settings
from app.db.models import ProviderReconcile
from app.reconcile.jobs import SCHEDULE_TASK
from app.reconcile.service import is_due
from app.worker.registry import SWEEP_TASKS, sweep_seconds

NOW = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=900)


def test_the_interval_is_at_least_a_minute_outside_testing() -> None:
    assert Settings().PROVIDER_RECONCILE_INTERVAL_S == 900
    with pytest.raises(ValidationError, match="PROVIDER_RECONCILE_INTERVAL_S"):
        Settings(ENV=Environment.development, PROVIDER_RECONCILE_INTERVAL_S=59)
    assert Settings(ENV=Environment.testing, PROVIDER_RECONCILE_INTERVAL_S=2)


def state(ago_s: float, failures: int = 0) -> ProviderReconcile:
    return ProviderReconcile(attempted_at=NOW - timedelta(seconds=ago_s), failures=failures)


@pytest.mark.parametrize(
    ("found", "due"),
    [
        (None, True),  # never reconciled
        (state(899), False),
        (state(900), True),
        (state(1799, failures=1), False),  # one failure: twice the interval
        (state(1800, failures=1), True),
        (state(3600 * 4 - 1, failures=9), False),  # at most 16 intervals
        (state(3600 * 4, failures=9), True),
    ],
)
def test_a_connection_is_due_after_its_interval_and_backs_off_after_failures(
    found: ProviderReconcile | None, due: bool
) -> None:
    assert is_due(found, NOW, INTERVAL) is due


def test_the_schedule_is_a_sweep_every_minute_and_faster_only_for_short_test_intervals() -> None:
    assert SCHEDULE_TASK in SWEEP_TASKS
    assert sweep_seconds(SCHEDULE_TASK, 900) == {0}
    assert sweep_seconds(SCHEDULE_TASK, 60) == {0}
    assert sweep_seconds(SCHEDULE_TASK, 2) == set(range(0, 60, 2))
    assert sweep_seconds("webhooks.sweep", 2) == {0}
