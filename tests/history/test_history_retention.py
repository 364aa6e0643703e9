"""The consent history's retention: the hourly purge deletes entries older than
RETENTION_HISTORY_DAYS and keeps younger ones. (Erasure of a person, history included, is
checked table by table in tests/e2e/test_privacy.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from app.config import Settings
from app.db.base import utcnow
from app.privacy.service import purge_expired
from app.resources import create_resources
from tests.consent.conftest import Scene, address
from tests.e2e.conftest import World

Make = Callable[..., Any]


async def entries(scene: Scene, email: str) -> int:
    answer = await scene.api("GET", "/api/v1/contacts", params={"email": email})
    return len(answer.json()["history"])


async def test_entries_older_than_the_retention_are_purged(
    world: World, scenes: Make, consent_settings: Settings
) -> None:
    world.onoffice.seed([address(i, f"p{i}@example.de") for i in (1, 2)])
    scene: Scene = await scenes("mailchimp")
    assert await entries(scene, "p1@example.de") == 2
    settings = consent_settings.model_copy(update={"RETENTION_HISTORY_DAYS": 30})
    resources = await create_resources(settings)
    try:
        kept = await purge_expired(resources, now=utcnow() + timedelta(days=29))
        assert kept.history == 0 and await entries(scene, "p1@example.de") == 2
        gone = await purge_expired(resources, now=utcnow() + timedelta(days=31))
        assert gone.history == 4
        assert await entries(scene, "p1@example.de") == 0
    finally:
        await resources.aclose()
