"""Import notices: bound to one connection, marked once, and only offered to a reachable URL."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Settings
from app.syncs.notices import NoticeBoard, notices_enabled


@pytest.mark.parametrize(
    ("url", "mode", "enabled"),
    [
        ("https://connector.example.com", "auto", True),
        ("http://connector.example.com", "auto", False),
        ("https://127.0.0.1:8000", "auto", False),
        ("https://localhost", "auto", False),
        ("https://10.0.0.5", "auto", False),
        ("http://127.0.0.1:8000", "on", True),
        ("https://connector.example.com", "off", False),
    ],
)
def test_notices_only_when_the_provider_can_call_us(
    settings: Settings, url: str, mode: str, enabled: bool
) -> None:
    changed = settings.model_copy(update={"PUBLIC_BASE_URL": url, "IMPORT_NOTIFY": mode})
    assert notices_enabled(changed) is enabled


async def _check(board: NoticeBoard) -> None:
    notice = await board.open(7)
    assert not await board.mark(8, notice)  # another connection's notice
    assert not await board.mark(7, "x" * 22)  # never issued
    assert await board.mark(7, notice)
    assert await board.wait(notice, 5)
    other = await board.open(7)
    assert not await board.wait(other, 0.1)  # nobody called


async def test_a_notice_in_process() -> None:
    await _check(NoticeBoard(None))


@pytest.mark.usefixtures("redis")
async def test_a_notice_across_processes(redis: Any) -> None:
    await _check(NoticeBoard(redis))
