"""The process-wide shared parts: built once in `create_resources`, closed in `aclose`.

Every part is typed and made at start (none on first use): the provider clients' limiter, pacer
and budget and Mailchimp's segment-id cache (shared by the clients of this process, a client is
cached per connection), the import notice board, the opt-out re-check store, the action kinds,
the provider-client cache, the status page's cached counts, and the small in-process state of
the embedded mode (locks, drain owners). With Redis, the limiter, pacer, budget, notices and
opt-out store are shared by every process; without it (embedded mode) they live here.

This module sits on a low floor: it imports the parts' types, never a domain service or
`app.resources` (tests/foundation/test_import_circles.py).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from app.db.models import Connection
from app.syncs.notices import NoticeBoard
from app.syncs.optout_store import OptOutStore, opt_out_store
from onoffice_client.scope import Group, User
from providers.base import NewsletterProvider
from providers.brevo.imports import PROCESS_POLLS_PER_HOUR
from providers.limits import (
    ConcurrencyLimiter,
    RatePacer,
    RequestBudget,
    concurrency_limiter,
    rate_pacer,
    request_budget,
)
from providers.mailchimp.tags import SegmentCache

T = TypeVar("T")

# Mailchimp allows 10 concurrent connections per account (held across all workers).
MAILCHIMP_MAX_CONNECTIONS = 10
# Brevo allows 10 requests/s on /contacts per account; 9/s leaves headroom for network jitter.
BREVO_CONTACTS_PER_SECOND = 9.0

# tenant id -> (when read, its action kinds and their types)
Kinds = dict[str, set[str]]
KindsCache = dict[int, tuple[float, Kinds]]
# (connection id, provider, hash of the encrypted key) -> (when built, the client)
ClientCache = OrderedDict[tuple[int, str, bytes], tuple[float, NewsletterProvider]]
# (tenant id, group id, claim) -> (when read, the group, its users)
MembersCache = dict[tuple[int, str, str | None], tuple[float, Group, list[User]]]
# webhook token hash -> (when looked up, the connection)
ConnectionCache = dict[str, tuple[float, Connection]]
# The status page (app/status/): the provider's live count per (connection, its creation, list,
# latest run) -> (monotonic time, count), and the scope's counts per (connection, its creation,
# scope, group) -> (monotonic time, every address, newsletter Yes) with the counts under way.
LiveCounts = dict[tuple[object, ...], tuple[float, int]]
ScopeCounts = dict[tuple[object, ...], tuple[float, int, int]]
ScopeCounting = dict[tuple[object, ...], asyncio.Future[tuple[int, int]]]


class Closing(Protocol):
    def aclose(self) -> Awaitable[None]: ...


class Slot(Generic[T]):
    """One part made on first use by the domain that knows how (the webhook writer needs the
    drain's kick, which lives above this floor)."""

    def __init__(self) -> None:
        self._value: T | None = None

    def get(self, make: Callable[[], T]) -> T:
        if self._value is None:
            self._value = make()
        return self._value

    @property
    def value(self) -> T | None:
        return self._value


@dataclass(frozen=True)
class SharedParts:
    limiter: ConcurrencyLimiter
    brevo_pacer: RatePacer
    process_budget: RequestBudget
    segment_cache: SegmentCache
    notices: NoticeBoard
    opt_outs: OptOutStore
    action_kinds: KindsCache = field(default_factory=dict)
    provider_clients: ClientCache = field(default_factory=OrderedDict)
    group_members: MembersCache = field(default_factory=dict)
    webhook_connections: ConnectionCache = field(default_factory=dict)
    live_counts: LiveCounts = field(default_factory=dict)
    scope_counts: ScopeCounts = field(default_factory=dict)
    scope_counting: ScopeCounting = field(default_factory=dict)
    # Embedded mode: job locks (app/worker/locks.py), drain owners per stream and connection
    # (app/inbox/owner.py) and the listing cursor a drain job left (app/webhooks/confirming.py:
    # until, cursor).
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    drain_owners: dict[tuple[str, int], str] = field(default_factory=dict)
    drain_listings: dict[int, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    webhook_writer: Slot[Closing] = field(default_factory=Slot)

    async def aclose(self) -> None:
        """Let the webhook writer finish its writes and kicks, then forget the cached clients
        (they hold no socket of their own: the HTTP client is the resources')."""
        writer = self.webhook_writer.value
        if writer is not None:
            await writer.aclose()
        self.provider_clients.clear()


def build_parts(redis: Any | None) -> SharedParts:
    return SharedParts(
        limiter=concurrency_limiter(redis, MAILCHIMP_MAX_CONNECTIONS),
        brevo_pacer=rate_pacer(redis, BREVO_CONTACTS_PER_SECOND),
        process_budget=request_budget(redis, PROCESS_POLLS_PER_HOUR),
        segment_cache=SegmentCache(),
        notices=NoticeBoard(redis),
        opt_outs=opt_out_store(redis),
    )
