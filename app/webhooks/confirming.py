"""Confirm a batch's events before acting (the decisions: `app.contacts.confirm`).

The drain reads the provider's current state of the emails of the batch's consent and identity
events in one bulk read (`NewsletterProvider.read_states`: a handful one by one, more through
the contacts changed since the oldest of the events) and maps each event to the signal to apply
or to "not confirmed". A state read after an event was received is good for that event, so the
states are kept for the drain job's later batches (a burst of thousands costs one listing, not
one read per batch); an event received after the read gets a fresh one. The job also keeps
where its listing stopped (`ListingCursor`): a later batch goes on from there instead of
reading the listing again from its first page (each batch did before: a burst whose people lay
behind a full sync's changes cost about ten seconds of listing per batch at 150 ms a request),
and so does its successor after a hand-over (the cursor travels in the job's arguments).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from app.contacts.confirm import (
    Confirmation,
    confirm,
    confirmation_list,
    needs_confirmation,
)
from app.contacts.repository import provider_signal
from app.contacts.values import normalise_email
from app.db.base import aware, utcnow
from app.db.models import Contact, InboundEvent
from app.resources import Resources
from app.webhooks.plan import event_of
from providers.base import ListingCursor, NewsletterProvider, ProviderContact, ProviderEvent

# The "changed since" read starts this long before the oldest event (the provider's time of
# the change is before its webhook fired; clocks differ).
OVERLAP = timedelta(minutes=5)
# An event time further back than this before its receipt is not trusted for the read's start
# (a forged or long-retried event must not make the read list the whole audience).
MAX_DELAY = timedelta(hours=2)
CACHE_MAX = 100_000
# How long a drain job's listing cursor is kept for the connection's next job (a fresh job
# lists from where the last one stopped; older, a listing from its own start is cheaper).
LISTING_KEPT_S = 600


@dataclass
class StateCache:
    """Provider states read by this drain job: email -> (state, when the read started)."""

    states: dict[str, tuple[ProviderContact | None, datetime]] = field(default_factory=dict)
    # Where the job's "changed since" listing stands (from its `since`, the offsets reached),
    # and the list it lists.
    cursor: ListingCursor | None = None
    list_id: str | None = None
    # The emails the last read wanted (where the next job's listing goes on: `left_off`).
    last_wanted: Sequence[str] = ()

    def fresh(self, email: str, received: datetime, occurred: datetime | None) -> bool:
        """Whether the kept state is good for an event of `email`: read after the event was
        received, or changed at the provider no earlier than the event fired (both times on
        the provider's clock; a state read from the provider is never worse than the news of
        an older change, so a forged time can only make the connector use a true state)."""
        entry = self.states.get(email)
        if entry is None:
            return False
        state, read_at = entry
        if read_at > received:
            return True
        changed = aware(state.last_changed) if state is not None else None
        return changed is not None and occurred is not None and changed >= occurred

    def hint(self, pending: Sequence[str]) -> dict[str, Any] | None:
        """The listing cursor for the job's successor after a hand-over (in the job's
        arguments; it may run in another worker process), for the `pending` emails it will
        confirm first: each listing from where the first of them was listed (or where it
        stopped), so the successor does not list from the first page again. It gets no
        states: one it needs from further back is read on its own, or the listing again
        (`providers._states`). With no `pending` emails: where the listing stopped (kept for
        the connection's next drain job, `keep_listing`)."""
        if self.cursor is None:
            return None
        offsets = dict(self.cursor.offsets)
        for email in pending:
            if (seen := self.cursor.positions.get(email)) is not None:
                index, position = seen
                offsets[index] = min(offsets.get(index, position), position)
        listed = {str(k): v for k, v in offsets.items()}
        return {"since": self.cursor.since.isoformat(), "offsets": listed, "list": self.list_id}

    def left_off(self) -> dict[str, Any] | None:
        """The cursor for the connection's next drain job (`keep_listing`): each listing from
        just after the last person the job's last read wanted, not from where the listing read
        ahead: the next events' people changed later, so they were listed after that person,
        and often before where the listing stopped (read ahead, in another job's states)."""
        hint = self.hint([])
        if hint is None or self.cursor is None:
            return hint
        reached: dict[int, int] = {}
        for email in self.last_wanted:
            if (seen := self.cursor.positions.get(email)) is not None:
                index, position = seen
                reached[index] = max(reached.get(index, 0), position + 1)
        for index, position in reached.items():
            hint["offsets"][str(index)] = min(hint["offsets"].get(str(index), position), position)
        return hint

    def take_hint(self, hint: Mapping[str, Any] | None) -> None:
        """Go on with a predecessor's listing cursor (`hint`)."""
        if hint is None or self.cursor is not None:
            return
        since = datetime.fromisoformat(str(hint["since"]))
        offsets = {int(k): int(v) for k, v in dict(hint.get("offsets") or {}).items()}
        self.cursor = ListingCursor(since, offsets)
        self.list_id = str(hint["list"]) if hint.get("list") is not None else None

    def cursor_from(self, since: datetime, list_id: str | None = None) -> ListingCursor:
        """The cursor to list from: the kept one when it lists from `since` or earlier (its
        listing holds everything changed since `since`) and, when known, the same list; else
        a new one from `since`."""
        other_list = list_id is not None and self.list_id not in (None, list_id)
        if self.cursor is None or self.cursor.since > since or other_list:
            self.cursor = ListingCursor(since)
        self.list_id = list_id or self.list_id
        return self.cursor

    def get(self, email: str) -> ProviderContact | None:
        entry = self.states.get(email)
        return entry[0] if entry is not None else None

    def keep(self, states: Mapping[str, ProviderContact | None], read_at: datetime) -> None:
        if len(self.states) + len(states) > CACHE_MAX:
            self.states.clear()
            self.cursor = None  # what it passed is forgotten: list again from the start
        for email, state in states.items():
            self.states[normalise_email(email)] = (state, read_at)


def _listing_key(connection_id: int) -> str:
    return f"connector:webhooks:listing:{connection_id}"


async def keep_listing(resources: Resources, connection_id: int, cache: StateCache) -> None:
    """Keep where the job's listing stopped for the connection's next drain job (a kick after
    the drain caught up), which then goes on from there instead of the first page: in Redis
    next to the drain's owner flag (embedded mode: in the process), for `LISTING_KEPT_S`."""
    hint = cache.left_off()
    if hint is None:
        return
    if resources.redis is None:
        resources.parts.drain_listings[connection_id] = (time.monotonic() + LISTING_KEPT_S, hint)
        return
    await resources.redis.set(_listing_key(connection_id), json.dumps(hint), ex=LISTING_KEPT_S)


async def kept_listing(resources: Resources, connection_id: int) -> dict[str, Any] | None:
    """The listing cursor the connection's last drain job kept (`keep_listing`), if any."""
    if resources.redis is None:
        until, kept = resources.parts.drain_listings.get(connection_id, (0.0, None))
        return kept if until > time.monotonic() else None
    raw = await resources.redis.get(_listing_key(connection_id))
    try:
        hint = json.loads(raw) if raw else None
        if not isinstance(hint, dict):
            return None
        datetime.fromisoformat(str(hint["since"]))
    except (ValueError, KeyError):
        return None  # unreadable: list afresh
    return hint


def read_since(rows: Sequence[tuple[InboundEvent, ProviderEvent]]) -> datetime:
    """Where the "changed since" read starts: the oldest event's time (within MAX_DELAY before
    its receipt), less the overlap."""
    starts = []
    for row, event in rows:
        received = aware(row.received_at) or utcnow()
        at = aware(event.occurred_at) or received
        starts.append(min(received, max(at, received - MAX_DELAY)))
    return min(starts) - OVERLAP


def emails_to_read(event: ProviderEvent) -> list[str]:
    emails = [normalise_email(event.email)]
    if event.new_email:
        emails.append(normalise_email(event.new_email))
    return [e for e in emails if e]


async def confirm_rows(
    provider: NewsletterProvider,
    list_id: str,
    label: str,
    rows: Sequence[InboundEvent],
    contacts: Mapping[str, Contact],
    cache: StateCache,
) -> dict[int, Confirmation]:
    """A confirmation for each row that needs one (ProviderError when the provider cannot be
    read: the events stay pending). Each is confirmed at the list it is about
    (`confirmation_list`: the connection's `list_id`, or the list a Mailchimp event was made at
    when the connection has left it since)."""
    by_list: dict[str, list[tuple[InboundEvent, ProviderEvent]]] = {}
    for row in rows:
        if needs_confirmation(event := event_of(row)):
            at = confirmation_list(event, list_id, webhooks_per_list=provider.webhooks_per_list)
            by_list.setdefault(at, []).append((row, event))
    out: dict[int, Confirmation] = {}
    for at, todo in by_list.items():
        # The job keeps the states of the connection's list; another list's are read afresh.
        kept = cache if at == list_id else StateCache()
        out |= await _confirm_at(provider, at, label, todo, contacts, kept, at != list_id)
    return out


async def _confirm_at(
    provider: NewsletterProvider,
    list_id: str,
    label: str,
    todo: Sequence[tuple[InboundEvent, ProviderEvent]],
    contacts: Mapping[str, Contact],
    cache: StateCache,
    other_list: bool,
) -> dict[int, Confirmation]:
    stale = [
        (row, event)
        for row, event in todo
        if not all(
            cache.fresh(e, aware(row.received_at) or utcnow(), aware(event.occurred_at))
            for e in emails_to_read(event)
        )
    ]
    if stale:
        wanted = sorted({e for _, event in stale for e in emails_to_read(event)})
        read_at = utcnow()
        cursor = cache.cursor_from(read_since(stale), list_id)
        states = await provider.read_states(list_id, wanted, cursor.since, cursor)
        cache.last_wanted = wanted
        cache.keep({e: states.get(e) for e in wanted} | states, read_at)
    out: dict[int, Confirmation] = {}
    for row, event in todo:
        email = normalise_email(event.email)
        contact = contacts.get(email)
        confirmation = confirm(
            event,
            cache.get(email),
            label,
            ledger=provider_signal(contact, None),
            new_state=cache.get(normalise_email(event.new_email)) if event.new_email else None,
        )
        out[row.id] = replace(confirmation, other_list=other_list)
    return out
