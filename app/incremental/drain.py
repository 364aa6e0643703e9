"""Incremental sync, trigger 1: onOffice's "address saved" webhook.

The events are stored per connection as `inbound_event` rows (source "onoffice": the inbox's
onOffice stream) and drained like the provider events: one owner per connection
(`app.inbox.owner`), in arrival order, a round of EVENTS_PER_ROUND at a time; duplicates of an
address within a round are read and pushed once (`push.push_addresses`). An address onOffice no
longer returns was deleted (or left the connection's scope). A transient failure leaves the
round pending and retries the job (`retry_or_fail`); a refusal counts a try (parked as failed
after INBOUND_EVENT_MAX_ATTEMPTS). The owner hands over to a successor job after its share of
the job timeout, gives the flag up when nothing is left, and looks once more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from app.connections.factory import provider_for_connection
from app.connections.onoffice_access import onoffice_for_connection
from app.connections.repository import ConnectionRepository, OnOfficeAccessRepository
from app.db.models import InboundEvent
from app.inbox import owner
from app.inbox.drain import run
from app.inbox.events import handling
from app.inbox.jobs import Stream, drain_job
from app.inbox.repository import InboundEventRepository
from app.incremental.push import push_addresses
from app.resources import Resources
from app.worker.context import retry_or_fail
from onoffice_client.models import (
    Address,
    NewsletterStatus,
    OnOfficeAccessLost,
    OnOfficeClaimError,
    OnOfficeError,
    OnOfficeTransientError,
)
from providers.base import ProviderError, ProviderTransientError

log = logging.getLogger(__name__)

STREAM = Stream.onoffice
EVENTS_PER_ROUND = 200
# A job drains this share of the job timeout, then hands over.
JOB_BUDGET_SHARE = 0.5
TRANSIENT = (ProviderTransientError, OnOfficeTransientError)


async def run_drain(
    resources: Resources,
    connection_id: int,
    token: str | None,
    *,
    step: int = 0,
    claim_as: str | None = None,
    job_try: int = 1,
    max_tries: int = 10,
) -> None:
    """The drain job of a connection's onOffice events: as `token`'s owner (a hand-over), or
    claiming the flag first (a kick: a no-op when another drain owns the connection)."""

    async def work(held: list[str]) -> None:
        await _drain_as_owner(resources, connection_id, held, step, job_try, max_tries)

    await run(resources, connection_id, token, claim_as, work, stream=STREAM)


async def _drain_as_owner(
    resources: Resources,
    connection_id: int,
    held: list[str],
    step: int,
    job_try: int,
    max_tries: int,
) -> None:
    deadline = time.monotonic() + resources.settings.WORKER_JOB_TIMEOUT_S * JOB_BUDGET_SHARE
    while True:
        if not await owner.still_owner(resources, connection_id, held[0], stream=STREAM):
            return  # the flag expired and another drain took over
        if await _drain_round(resources, connection_id, job_try=job_try, max_tries=max_tries):
            if time.monotonic() < deadline:
                continue
            job = drain_job(connection_id, held[0], step=step + 1, stream=STREAM)
            await resources.queue.enqueue(job)
            return
        await owner.release(resources, connection_id, held[0], stream=STREAM)
        async with resources.sessionmaker() as session:
            arrived = await InboundEventRepository.from_session(session).pending_besides(
                connection_id, (), STREAM
            )
        if not arrived:
            return
        claimed = await owner.claim(resources, connection_id, stream=STREAM)
        if claimed is None:
            return  # a new drain was started for them
        held[0] = claimed


async def _drain_round(
    resources: Resources, connection_id: int, *, job_try: int, max_tries: int
) -> bool:
    """One round of the connection's oldest pending events; False when none was pending."""
    async with resources.sessionmaker() as session:
        events = await InboundEventRepository.from_session(session).pending(
            connection_id=connection_id, limit=EVENTS_PER_ROUND, stream=STREAM
        )
    if not events:
        return False
    max_attempts = resources.settings.INBOUND_EVENT_MAX_ATTEMPTS
    try:
        async with handling(resources, events, max_attempts=max_attempts) as handled:
            try:
                await _push_events(resources, connection_id, events)
            except TRANSIENT:
                raise  # pending, a try counted: the job is retried
            except (ProviderError, OnOfficeError) as exc:
                handled.refused(str(exc))
    except TRANSIENT as exc:
        retry_or_fail(exc, transient=True, job_try=job_try, max_tries=max_tries, cap=120)
        raise
    return True


async def _push_events(
    resources: Resources, connection_id: int, events: Sequence[InboundEvent]
) -> None:
    async with resources.sessionmaker() as session:
        connection, tenant = await ConnectionRepository.from_session(session).with_tenant(
            connection_id
        )
        refused = await OnOfficeAccessRepository.from_session(session).get(connection_id)
    if connection is None or tenant is None:
        return
    if refused is not None:
        return  # onOffice refuses its access: its poll brings these changes once it works
    ids = list(dict.fromkeys(int(e.payload["address_id"]) for e in events))
    # The connection reads with its own group's claim and scope: an address it cannot read
    # (deleted in onOffice, or outside its scope) is gone for it: what it synced for that
    # address is unsubscribed from its list, and nothing else is sent.
    onoffice = onoffice_for_connection(resources, tenant, connection)
    try:
        addresses = await onoffice.get_addresses(ids)
    except OnOfficeAccessLost:
        return  # recorded (app/connections/access.py); its watermark stays put
    except OnOfficeClaimError as exc:
        # This group waits for a user to open the connector; its poll (whose watermark
        # stays put meanwhile) brings these changes then.
        log.info(
            "incremental.connection_waits_for_claim",
            extra={"connection_id": connection.id, "error": str(exc)},
        )
        return
    found = {a.id for a in addresses}
    gone = [
        Address(id=i, newsletter=NewsletterStatus.not_specified, active=False)
        for i in ids
        if i not in found
    ]
    provider = provider_for_connection(resources, connection)
    await push_addresses(resources, provider, connection, [*addresses, *gone], onoffice)
