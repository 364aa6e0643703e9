"""The history entries of a provider event the applier settled (webhook, reconciliation, a full
sync's write-back, an onOffice opt-out carried to a person's other addresses): the signal it
carried (`event_entries`) and every onOffice address the applier wrote for it (`written`), the
same for an event applied on its own (`app.webhooks.apply`) or in a batch (`app.webhooks.batch`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from app.contacts.rules import event_state
from app.contacts.values import normalise_email
from app.db.base import aware
from app.db.models import InboundEvent
from app.history.writer import (
    ONOFFICE,
    PERSON,
    PROVIDER,
    RECONCILIATION,
    WEBHOOK,
    Entry,
    action_entry,
    signal_entry,
)

# What an applier writes to an onOffice address, besides a Newsletter value (`yes`, `no`, …):
CREATED = "created"  # note of the Newsletter value of an address created for a sign-up
EMAIL = "email"  # the address's email changed (note: the other email)
ACTIVITY = "activity"  # an activity (note: the event's type, e.g. `delivered`)

# Event types that carry consent or removal (activity-only events are not consent).
CONSENT_TYPES = frozenset({"subscribe", "unsubscribe", "deleted", "cleaned", "hard_bounce"})
PERSON_PREFIX = "person:"


def source_of(row: InboundEvent) -> str:
    key = row.dedupe_key
    if key.startswith(PERSON_PREFIX):
        return PERSON
    if key.startswith("reconcile"):
        return RECONCILIATION
    return WEBHOOK


def event_entries(
    row: InboundEvent,
    *,
    state: str | None = None,
    at: datetime | None = None,
    note: str | None = None,
) -> list[Entry]:
    """The provider's signal an event carried (`state` at `at`: what the applier confirmed,
    else the event's own type and time) and its outcome (`note`: e.g. `ignored`)."""
    payload = row.payload
    kind = str(payload.get("type", ""))
    if kind not in CONSENT_TYPES:
        return []
    email = normalise_email(str(payload.get("email", "")))
    source = source_of(row)
    when = at or _time(payload.get("occurred_at")) or aware(row.received_at)
    entries: list[Entry] = []
    if payload.get("raw_type") == "person":
        # An onOffice opt-out on one address, carried to the person's other addresses.
        carrier = payload.get("address_id")
        value = str(payload.get("reason") or "no")
        entries.append(
            signal_entry(
                email, ONOFFICE, value, source, row.id, at=when, address_id=carrier, note=note
            )
        )
    else:
        value = state or event_state(kind) or kind
        entries.append(signal_entry(email, PROVIDER, value, source, row.id, at=when, note=note))
    return entries


def written(
    row: InboundEvent,
    writes: Iterable[tuple[int, str]],
    *,
    email: str | None = None,
    note: str | None = None,
) -> list[Entry]:
    """An action per onOffice address the applier wrote for the event (`writes`: address id and
    the value written: a Newsletter value, `email` or `activity`), the event as its source;
    under the event's email unless `email` says another."""
    who = email or normalise_email(str(row.payload.get("email", "")))
    source = source_of(row)
    return [
        action_entry(who, ONOFFICE, value, source, row.id, address_id=address_id, note=note)
        for address_id, value in writes
    ]


def activity_written(row: InboundEvent, address_ids: Iterable[int]) -> list[Entry]:
    """The event's activity, written to each of `address_ids`."""
    kind = str(row.payload.get("type") or row.payload.get("raw_type") or "")
    return written(row, [(a, ACTIVITY) for a in sorted(set(address_ids))], note=kind or None)


def _time(value: object) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            return aware(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None
