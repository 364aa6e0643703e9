"""The plan of one event in a drained batch (what to write, then which outcome), and the small
pieces the drain and the batch share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.contacts.rules import PROTECTED_FROM_REMOVAL, Signal, may_overwrite
from app.contacts.values import normalise_email
from app.db.models import Contact, InboundEvent, InboundEventStatus
from onoffice_client.models import ActivityCreate, Address, NewsletterStatus
from providers.base import ProviderEvent


class Stop(Exception):
    """Stop the drain: onOffice is down (retry with backoff) or needs a fresh login."""

    def __init__(self, *, waiting_for_login: bool = False, attempts: int = 1) -> None:
        super().__init__("stop the drain")
        self.waiting_for_login = waiting_for_login
        self.attempts = attempts


# (provider signal, the value written to onOffice or None: kept, contact, address id)
Record = tuple[Signal, NewsletterStatus | None, Contact | None, int | None]

# Steps kept on an event (`_steps`) when a create was sent but its answer was lost (it may have
# been applied): the next try looks for what exists before it creates anything again.
ACTIVITY_UNSURE = "activity?"
CREATE_UNSURE = "create?"
# A re-subscribe read from a profile change finds no address: it creates none (only a confirmed
# sign-up does).
NO_ADDRESS = "no onOffice address with this email (only a sign-up creates one)"


@dataclass
class Plan:
    """What one event needs: a final outcome without writes, or writes and then an outcome."""

    row: InboundEvent
    email: str
    status: str = InboundEventStatus.applied
    note: str | None = None
    steps: list[str] = field(default_factory=list)
    modifies: list[tuple[int, NewsletterStatus]] = field(default_factory=list)
    activity: ActivityCreate | None = None
    # The ledger learns this on success: (provider signal, written value, contact, address id).
    record: Record | None = None
    single: bool = False  # applied by EventApplier on its own


def event_of(row: InboundEvent) -> ProviderEvent:
    return ProviderEvent.model_validate(
        {k: v for k, v in row.payload.items() if not k.startswith("_")}
    )


def emails_of(row: InboundEvent) -> set[str]:
    """The emails an event touches (its order is kept per email)."""
    payload = row.payload
    if payload.get("raw_type") == "campaign":
        return {f"campaign:{payload.get('campaign')}"}
    emails = {normalise_email(str(payload.get("email", "")))}
    if payload.get("new_email"):
        emails.add(normalise_email(str(payload["new_email"])))
    return emails


def is_echo(steps: Sequence[str], addresses: Sequence[Address], target: NewsletterStatus) -> bool:
    """Nothing to change in onOffice for `target` (a subscribe whose addresses all show Yes, a
    removal none of whose addresses it may overwrite): the echo of the connector's own push,
    which writes no activity. Not when an earlier try of this event wrote the status, or sent
    a create whose answer was lost (then the change may be its own, and its activity is due)."""
    if "status" in steps or ACTIVITY_UNSURE in steps or CREATE_UNSURE in steps:
        return False
    if target == NewsletterStatus.yes:
        return all(a.newsletter == NewsletterStatus.yes for a in addresses)
    return not any(may_overwrite(a.newsletter, target) for a in addresses)


def shown_after(written: NewsletterStatus, current: str | None) -> str:
    """The onOffice status the ledger records once `written` is in onOffice: "not specified"
    never overwrites No, Cancellation or double opt-in pending (`current`)."""
    if written == NewsletterStatus.not_specified and current in PROTECTED_FROM_REMOVAL:
        return current
    return written.name
