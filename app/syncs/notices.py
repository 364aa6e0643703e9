"""Import notices: the provider tells us that an asynchronous import is done.

A provider whose bulk import runs in the background (Brevo's `POST /contacts/import`) can call
a `notifyUrl` once the import has been processed. Every import gets its own notice: a random
id (128 bits) registered for the connection, and the URL
`{PUBLIC_BASE_URL}/api/v1/syncs/import-notices/{connection_id}/{notice_id}`. The route marks the
notice done when the id is registered for that connection (404 otherwise); the batch job that
waits for it wakes up, confirms the import's status with one read and goes on. The call is
only a trigger: its body is ignored (its format is not documented).

Notices live in Redis (shared by the API and every worker, 2 hours) or, in embedded mode, in
the process. `IMPORT_NOTIFY`: `on`, `off`, or `auto` (on when PUBLIC_BASE_URL is an https URL of
a host the provider can reach: not localhost, not a private or loopback address).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
from typing import Any
from urllib.parse import urlsplit

from app.config import Settings

NOTICE_TTL_S = 2 * 3600
NOTICE_PATH = "/api/v1/syncs/import-notices/{connection_id}/{notice_id}"
_PREFIX = "connector:notice"


def notices_enabled(settings: Settings) -> bool:
    """Whether imports may ask the provider to call us back (`IMPORT_NOTIFY`)."""
    if settings.IMPORT_NOTIFY != "auto":
        return settings.IMPORT_NOTIFY == "on"
    url = urlsplit(settings.PUBLIC_BASE_URL)
    host = (url.hostname or "").lower()
    if url.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a DNS name
    return address.is_global


class NoticeBoard:
    """The notices of this process (and, with Redis, of every process)."""

    def __init__(self, redis: Any | None) -> None:
        self._redis = redis
        self._local: dict[str, tuple[int, asyncio.Event]] = {}

    async def open(self, connection_id: int) -> str:
        notice_id = secrets.token_urlsafe(16)
        if self._redis is not None:
            await self._redis.set(f"{_PREFIX}:{notice_id}", str(connection_id), ex=NOTICE_TTL_S)
        else:
            self._local[notice_id] = (connection_id, asyncio.Event())
        return notice_id

    async def mark(self, connection_id: int, notice_id: str) -> bool:
        """Mark a notice done; False when no such notice is open for the connection."""
        if self._redis is None:
            found = self._local.get(notice_id)
            if found is None or found[0] != connection_id:
                return False
            found[1].set()
            return True
        owner = await self._redis.get(f"{_PREFIX}:{notice_id}")
        if owner is None or int(owner) != connection_id:
            return False
        done = f"{_PREFIX}:{notice_id}:done"
        await self._redis.rpush(done, "1")
        await self._redis.expire(done, NOTICE_TTL_S)
        return True

    async def wait(self, notice_id: str, within_s: float) -> bool:
        """True once the notice was marked done (at most `within_s` seconds from now)."""
        if self._redis is None:
            found = self._local.get(notice_id)
            if found is None:
                return False
            try:
                async with asyncio.timeout(within_s):
                    await found[1].wait()
            except TimeoutError:
                return False
            finally:
                self._local.pop(notice_id, None)
            return True
        # BLPOP holds one connection while it waits; a notice marked before it started is
        # still in the list.
        popped = await self._redis.blpop([f"{_PREFIX}:{notice_id}:done"], timeout=within_s)
        with contextlib.suppress(Exception):
            await self._redis.delete(f"{_PREFIX}:{notice_id}")
        return popped is not None


class ConnectionNotices:
    """The provider client's view (providers.brevo.imports.ImportNotices) for one connection."""

    def __init__(self, board: NoticeBoard, base_url: str, connection_id: int) -> None:
        self._board = board
        self._base_url = base_url.rstrip("/")
        self._connection_id = connection_id

    async def open(self) -> tuple[str, str]:
        notice_id = await self._board.open(self._connection_id)
        path = NOTICE_PATH.format(connection_id=self._connection_id, notice_id=notice_id)
        return notice_id, f"{self._base_url}{path}"

    async def wait(self, notice_id: str, within_s: float) -> bool:
        return await self._board.wait(notice_id, within_s)


def connection_notices(
    settings: Settings, board: NoticeBoard, connection_id: int
) -> ConnectionNotices | None:
    """Notices for a connection's imports, or None when the provider cannot reach us."""
    if not notices_enabled(settings):
        return None
    return ConnectionNotices(board, settings.PUBLIC_BASE_URL, connection_id)
