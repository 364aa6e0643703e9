"""A drain job's frame, the same for both streams: the job takes the connection's flag
(`app.inbox.owner`) as a kick or as the owner's hand-over, works as its owner, and gives the
flag up at once when it fails."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from app.inbox.jobs import Stream
from app.inbox.owner import Resources, claim, release, still_owner


def claim_token(ctx: Mapping[str, Any], token: str | None) -> str | None:
    """What a kick job claims the flag as: on arq, the job itself (its id and enqueue time,
    unique per enqueued job), so the job's next try, on another worker once a killed worker's
    lease expired, owns it still. (In-process jobs die with the process: a fresh token each.)"""
    enqueued = ctx.get("enqueue_time")
    return f"{ctx.get('job_id')}@{enqueued}" if token is None and enqueued else None


async def take(
    resources: Resources,
    connection_id: int,
    token: str | None,
    claim_as: str | None = None,
    *,
    stream: Stream = Stream.provider,
) -> str | None:
    """The flag a drain job works under: as `token`'s owner (a hand-over), or claiming the
    flag first (a kick: None when another drain owns the connection). A hand-over whose flag
    is gone (its drain failed and gave it up) claims it again, like a kick. A kick claims as
    `claim_as` (its job's own token): its next try, after its worker was killed, is still the
    owner and drains at once instead of waiting for the dead try's flag to expire."""
    if (
        token is None
        and claim_as
        and await still_owner(resources, connection_id, claim_as, stream=stream)
    ):
        token = claim_as
    if token is None or not await still_owner(resources, connection_id, token, stream=stream):
        token = await claim(resources, connection_id, claim_as, stream=stream)
    return token


async def run(
    resources: Resources,
    connection_id: int,
    token: str | None,
    claim_as: str | None,
    work: Callable[[list[str]], Awaitable[None]],
    *,
    stream: Stream = Stream.provider,
) -> None:
    """A drain job's frame: takes the flag (`take`; nothing to do when another drain owns the
    connection) and runs `work(held)` as its owner; `held[0]` is the flag the work holds (it
    may give it up and claim it again). Any failure (the database or Redis gone, a bug, a
    retry, the job cancelled) gives the flag up at once, so that the job's retry, the next kick
    or the sweep takes over in seconds instead of waiting for the flag to expire. (Best effort:
    with Redis down the flag cannot be released, and a restarted Redis without persistence has
    lost it anyway.)"""
    token = await take(resources, connection_id, token, claim_as, stream=stream)
    if token is None:
        return
    held = [token]
    try:
        await work(held)
    except BaseException:
        with contextlib.suppress(Exception):
            await release(resources, connection_id, held[0], stream=stream)
        raise
