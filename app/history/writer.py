"""The one writer of the consent history (`consent_history`): every place that decides or acts
hands its entries here, in its own transaction, so the history commits with what it records.

An entry is a signal (a side said something: onOffice's Newsletter value, the provider's state),
an action (the connector wrote something to a side: a subscribe or unsubscribe at the provider,
a value to an onOffice address) or a decision (a user applied, dismissed, restored, retried or
approved something). `source` says where it came from, `source_ref` which event, run or user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.contacts.person import PersonSignal
from app.contacts.values import normalise_email
from app.db.base import aware, utcnow
from app.history.repository import HistoryRepository

# kind
SIGNAL = "signal"
ACTION = "action"
DECISION = "decision"
# side
ONOFFICE = "onoffice"
PROVIDER = "provider"
USER = "user"
# source
WEBHOOK = "webhook"
RECONCILIATION = "reconciliation"
FULL_SYNC = "full_sync"
INCREMENTAL = "incremental"  # a poll or onOffice's "address saved" webhook
PERSON = "person"  # an onOffice opt-out on another address of the same email
APPROVAL = "user"  # a user's decision in the UI or API
# A data-only update at the provider (value), and what it changed (its note): the contact's
# fields (names, salutation, greeting: the ledger keeps only their fingerprint, not which one),
# its tags, both, or nothing (a forced resend).
UPDATE = "update"
FIELDS, TAGS, FIELDS_AND_TAGS, RESENT = "fields", "tags", "fields+tags", "resent"


@dataclass(frozen=True)
class Entry:
    email: str
    side: str
    kind: str
    value: str
    source: str
    source_ref: str | int | None = None
    address_id: int | None = None
    occurred_at: datetime | None = None
    note: str | None = None


def signal_entry(
    email: str,
    side: str,
    value: str | None,
    source: str,
    ref: object = None,
    *,
    at: datetime | None = None,
    address_id: int | None = None,
    note: str | None = None,
) -> Entry:
    """A side's consent signal."""
    return Entry(email, side, SIGNAL, value or "unknown", source, _ref(ref), address_id, at, note)


def action_entry(
    email: str,
    side: str,
    value: str,
    source: str,
    ref: object = None,
    *,
    address_id: int | None = None,
    note: str | None = None,
) -> Entry:
    """What the connector wrote to `side` (provider: subscribe/unsubscribe; onOffice: a value)."""
    return Entry(email, side, ACTION, value, source, _ref(ref), address_id, None, note)


def provider_update(
    email: str,
    source: str,
    ref: object,
    *,
    address_id: int | None,
    before: tuple[str | None, Sequence[str] | None],
    after: tuple[str | None, Sequence[str] | None],
) -> Entry:
    """A contact already subscribed, sent to the provider again because its data changed
    (`before`/`after`: the fields' fingerprint and the tags, as last synced and as sent). Only
    what was sent is recorded: an unchanged re-read sends nothing and records nothing."""
    fields = before[0] != after[0]
    tags = sorted(before[1] or []) != sorted(after[1] or [])
    note = FIELDS_AND_TAGS if fields and tags else FIELDS if fields else TAGS if tags else RESENT
    return action_entry(email, PROVIDER, UPDATE, source, ref, address_id=address_id, note=note)


def decision_entry(
    email: str, value: str, user_id: str, *, address_id: int | None = None, note: str | None = None
) -> Entry:
    """A user's decision (apply, dismiss, restore, retry, approve) about this person."""
    return Entry(email, USER, DECISION, value, APPROVAL, user_id or "?", address_id, None, note)


def onoffice_seen(email: str, person: PersonSignal, source: str, ref: object = None) -> Entry:
    """The person's onOffice signal (from all its addresses) as a sync saw it change."""
    return signal_entry(
        email, ONOFFICE, person.status, source, ref, at=person.at, address_id=person.carrier
    )


def _ref(ref: object) -> str | None:
    return None if ref is None else str(ref)[:64]


async def record(session: AsyncSession, connection_id: int, entries: Iterable[Entry]) -> int:
    """Add the entries to the history (in the caller's transaction); how many."""
    now = utcnow()
    rows = [
        {
            "connection_id": connection_id,
            "email": normalise_email(e.email)[:320],
            "side": e.side,
            "kind": e.kind,
            "value": e.value[:32],
            "address_id": e.address_id,
            "occurred_at": aware(e.occurred_at),
            "recorded_at": now,
            "source": e.source,
            "source_ref": _ref(e.source_ref),
            "note": e.note[:64] if e.note else None,
        }
        for e in entries
        if e.email
    ]
    if rows:
        await HistoryRepository.from_session(session).add_many(rows)
    return len(rows)
