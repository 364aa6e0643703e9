"""Imports every module that registers tasks, so the worker and the in-process queue agree."""

from __future__ import annotations

import importlib

from app.incremental.jobs import SCHEDULE_TASK
from app.webhooks.jobs import HEALTH_SWEEP_TASK, SWEEP_TASK

TASK_MODULES: tuple[str, ...] = (
    "app.syncs.tasks",
    "app.webhooks.tasks",
    "app.incremental.tasks",
    "app.privacy.tasks",
)


# The periodic sweeps that resume stalled work (lost enqueues, crashed workers): arq cron jobs
# in a worker, the embedded sweeper otherwise. The webhook health sweep checks each connection
# every PROVIDER_RECONCILE_INTERVAL_S (app/webhooks/checkup.py).
SWEEP_TASKS: tuple[str, ...] = ("sync.resume", SWEEP_TASK, SCHEDULE_TASK, HEALTH_SWEEP_TASK)
# Housekeeping once an hour (at minute HOURLY_MINUTE): the data-protection retention purge.
HOURLY_TASKS: tuple[str, ...] = ("privacy.purge",)
HOURLY_MINUTE = 17


def load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
