"""Who drains a connection's events: one owner at a time, claimed with a cheap Redis flag.

The flag `connector:webhooks:drain:<connection id>` holds the owner's token. Ingest claims it
(`SET NX`, one round trip) after its commit and only the winner enqueues the drain job, so a
burst costs one Redis command per delivery and one job per connection. The owner keeps the flag
alive while it works, gives it up when nothing is left, then looks once more for events that
arrived meanwhile (and claims again if so): an event committed before a failed claim is always
seen by the owner of the moment. A dead owner's flag expires; the sweep then starts a new drain.
Embedded mode (no Redis) keeps the flags in the process.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from app.resources import Resources
from app.webhooks.jobs import APPLY_TASK as DRAIN_TASK
from app.webhooks.jobs import drain_job

log = logging.getLogger(__name__)

__all__ = ["DRAIN_TASK", "claim", "drain_job", "kick", "release", "still_owner", "take_over"]

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


def _key(connection_id: int) -> str:
    return f"connector:webhooks:drain:{connection_id}"


def _redis(resources: Resources) -> Any:
    return resources.redis


def _local(resources: Resources) -> dict[int, str]:
    return resources.parts.drain_owners


def flag_ttl_s(resources: Resources, defer_s: float = 0.0) -> float:
    """How long a flag lives without its owner: a job's timeout, plus any deferral."""
    return resources.settings.WORKER_JOB_TIMEOUT_S + 10 + defer_s


async def claim(resources: Resources, connection_id: int, token: str | None = None) -> str | None:
    """Become the connection's drain owner as `token` (default: a new one): the token, or None
    when another one owns it."""
    token = token or secrets.token_hex(8)
    if resources.redis is None:
        flags = _local(resources)
        if connection_id in flags:
            return None
        flags[connection_id] = token
        return token
    ttl_ms = int(flag_ttl_s(resources) * 1000)
    won = await resources.redis.set(_key(connection_id), token, nx=True, px=ttl_ms)
    return token if won else None


async def take_over(resources: Resources, connection_id: int) -> str:
    """Become the owner whatever the flag says (a drain waiting out a backoff finds it lost
    and stops); for applying a connection's events at once before it changes or goes."""
    token = secrets.token_hex(8)
    if resources.redis is None:
        _local(resources)[connection_id] = token
        return token
    ttl_ms = int(flag_ttl_s(resources) * 1000)
    await resources.redis.set(_key(connection_id), token, px=ttl_ms)
    return token


async def still_owner(
    resources: Resources, connection_id: int, token: str, defer_s: float = 0.0
) -> bool:
    """Whether `token` still owns the connection; extends the flag when it does."""
    if resources.redis is None:
        return _local(resources).get(connection_id) == token
    ttl_ms = int(flag_ttl_s(resources, defer_s) * 1000)
    result = await _redis(resources).eval(_EXTEND, 1, _key(connection_id), token, str(ttl_ms))
    return bool(result)


async def release(resources: Resources, connection_id: int, token: str) -> None:
    if resources.redis is None:
        flags = _local(resources)
        if flags.get(connection_id) == token:
            del flags[connection_id]
        return
    await _redis(resources).eval(_RELEASE, 1, _key(connection_id), token)


async def kick(resources: Resources, connection_id: int) -> bool:
    """Make sure a drain runs for the connection (after the events were committed): claims the
    flag and enqueues the drain, or does nothing when a drain owns it. True when started."""
    token = await claim(resources, connection_id)
    if token is None:
        return False
    try:
        await resources.queue.enqueue(drain_job(connection_id, token))
    except Exception:
        await release(resources, connection_id, token)
        raise
    return True
