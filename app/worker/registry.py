"""Imports every module that registers tasks, so the worker and the in-process queue agree."""

from __future__ import annotations

import importlib

TASK_MODULES: tuple[str, ...] = (
    "app.syncs.tasks",
    "app.webhooks.tasks",
    "app.incremental.tasks",
)


def load_tasks() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
