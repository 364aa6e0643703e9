"""Imports every module that registers tasks, so the worker and the in-process queue agree."""

from __future__ import annotations

import importlib

from app.incremental.jobs import SCHEDULE_TASK
from app.reconcile.jobs import SCHEDULE_TASK as RECONCILE_TASK
from app.webhooks.jobs import HEALTH_SWEEP_TASK, SWEEP_TASK

TASK_MODULES: tuple[str, ...] = (
    "app.syncs.tasks",
    "app.webhooks.tasks",
    "app.incremental.tasks",
    "app.privacy.tasks",
    "app.reconcile.tasks",
    "app.preview.tasks",
)


# The periodic sweeps that resume stalled work (lost enqueues, crashed workers): arq cron jobs
# in a worker, the embedded sweeper otherwise.
# The reconciliation's schedule is one of them: each connection is reconciled once its
# PROVIDER_RECONCILE_INTERVAL_S passed. The webhook health sweep checks each connection
# on the same interval (app/webhooks/checkup.py).
SWEEP_TASKS: tuple[str, ...] = (
    "sync.resume",
    SWEEP_TASK,
    SCHEDULE_TASK,
    RECONCILE_TASK,
    HEALTH_SWEEP_TASK,
)
# Housekeeping once an hour (at minute HOURLY_MINUTE): the data-protection retention purge.
HOURLY_TASKS: tuple[str, ...] = ("privacy.purge",)
HOURLY_MINUTE = 17


# `sync.resume` runs every few seconds: it finds full syncs whose jobs Redis lost (a restart
# without persistence) by looking at Redis, not only by their age (app/syncs/liveness.py).
RESUME_EVERY_S = 2


def sweep_seconds(name: str, reconcile_interval_s: int) -> set[int]:
    """The seconds of each minute a sweep runs at: once a minute, except `sync.resume`
    (every RESUME_EVERY_S) and the reconciliation's schedule under an interval shorter than a
    minute (ENV=testing only)."""
    if name == "sync.resume":
        return set(range(0, 60, RESUME_EVERY_S))
    if name == RECONCILE_TASK and reconcile_interval_s < 60:
        return set(range(0, 60, max(1, reconcile_interval_s)))
    return {0}


def load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
