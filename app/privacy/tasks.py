"""The hourly retention job."""

from __future__ import annotations

from typing import Any

from app.privacy.service import purge_expired
from app.worker.queue import task

PURGE_TASK = "privacy.purge"


@task(PURGE_TASK, keep_result_s=0)
async def privacy_purge(ctx: dict[str, Any]) -> None:
    await purge_expired(ctx["resources"])
