"""The history entries of a provider event the applier settled (webhook, reconciliation, a full
sync's write-back, an onOffice opt-out carried to a person's other addresses)."""

from __future__ import annotations

from collections.abc import Sequence
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
from onoffice_client.models import NewsletterStatus

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
    modifies: Sequence[tuple[int, NewsletterStatus]] = (),
) -> list[Entry]:
    """The provider's signal an event carried (`state` at `at`: what the applier confirmed,
    else the event's own type and time), its outcome (`note`: e.g. `ignored`), and each value
    written to an onOffice address."""
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
    for address_id, status in modifies:
        entries.append(
            action_entry(email, ONOFFICE, status.name, source, row.id, address_id=address_id)
        )
    return entries


def _time(value: object) -> datetime | None:
    if isinstance(value, str) and value:
        try:
            return aware(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None
