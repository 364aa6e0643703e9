"""Who drains a connection's events: one owner at a time, claimed with a cheap Redis flag.

The flag `connector:<stream>:drain:<connection id>` holds the owner's token (one flag per
stream: `webhooks` for the provider events, `onoffice` for the "address saved" events). Ingest
claims it (`SET NX`, one round trip) after its commit and only the winner enqueues the drain
job, so a burst costs one Redis command per delivery and one job per connection. The owner
keeps the flag alive while it works, gives it up when nothing is left, then looks once more
for events that arrived meanwhile (and claims again if so): an event committed before a failed
claim is always seen by the owner of the moment. A dead owner's flag expires; the sweep then
starts a new drain. Embedded mode (no Redis) keeps the flags in the process.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol

from app.config import Settings
from app.inbox.jobs import Stream, drain_job
from app.worker.queue import JobQueue

log = logging.getLogger(__name__)

__all__ = ["Stream", "claim", "kick", "release", "still_owner", "take_over"]


class _Parts(Protocol):
    @property
    def drain_owners(self) -> dict[tuple[str, int], str]: ...


class Resources(Protocol):
    """What the owner needs of the process's resources (app/resources.py)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def queue(self) -> JobQueue: ...
    @property
    def redis(self) -> Any: ...
    @property
    def parts(self) -> _Parts: ...


# Compare-and-set scripts: only the owner extends or releases the flag.
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def _key(connection_id: int, stream: Stream) -> str:
    return f"connector:{stream}:drain:{connection_id}"


def _redis(resources: Resources) -> Any:
    return resources.redis


def _local(resources: Resources) -> dict[tuple[str, int], str]:
    return resources.parts.drain_owners


def flag_ttl_s(resources: Resources, defer_s: float = 0.0) -> float:
    """How long a flag lives without its owner: a job's timeout, plus any deferral."""
    return resources.settings.WORKER_JOB_TIMEOUT_S + 10 + defer_s


async def claim(
    resources: Resources,
    connection_id: int,
    token: str | None = None,
    *,
    stream: Stream = Stream.provider,
) -> str | None:
    """Become the connection's drain owner as `token` (default: a new one): the token, or None
    when another one owns it."""
    token = token or secrets.token_hex(8)
    if resources.redis is None:
        flags = _local(resources)
        if (stream, connection_id) in flags:
            return None
        flags[stream, connection_id] = token
        return token
    ttl_ms = int(flag_ttl_s(resources) * 1000)
    won = await resources.redis.set(_key(connection_id, stream), token, nx=True, px=ttl_ms)
    return token if won else None


async def take_over(
    resources: Resources, connection_id: int, *, stream: Stream = Stream.provider
) -> str:
    """Become the owner whatever the flag says (a drain waiting out a backoff finds it lost
    and stops); for applying a connection's events at once before it changes or goes."""
    token = secrets.token_hex(8)
    if resources.redis is None:
        _local(resources)[stream, connection_id] = token
        return token
    ttl_ms = int(flag_ttl_s(resources) * 1000)
    await resources.redis.set(_key(connection_id, stream), token, px=ttl_ms)
    return token


async def still_owner(
    resources: Resources,
    connection_id: int,
    token: str,
    defer_s: float = 0.0,
    *,
    stream: Stream = Stream.provider,
) -> bool:
    """Whether `token` still owns the connection; extends the flag when it does."""
    if resources.redis is None:
        return _local(resources).get((stream, connection_id)) == token
    ttl_ms = int(flag_ttl_s(resources, defer_s) * 1000)
    key = _key(connection_id, stream)
    result = await _redis(resources).eval(_EXTEND, 1, key, token, str(ttl_ms))
    return bool(result)


async def release(
    resources: Resources, connection_id: int, token: str, *, stream: Stream = Stream.provider
) -> None:
    if resources.redis is None:
        flags = _local(resources)
        if flags.get((stream, connection_id)) == token:
            del flags[stream, connection_id]
        return
    await _redis(resources).eval(_RELEASE, 1, _key(connection_id, stream), token)


async def kick(
    resources: Resources, connection_id: int, *, stream: Stream = Stream.provider
) -> bool:
    """Make sure a drain runs for the connection (after the events were committed): claims the
    flag and enqueues the stream's drain, or does nothing when a drain owns it. True when
    started."""
    token = await claim(resources, connection_id, stream=stream)
    if token is None:
        return False
    try:
        await resources.queue.enqueue(drain_job(connection_id, token, stream=stream))
    except Exception:
        await release(resources, connection_id, token, stream=stream)
        raise
    return True
