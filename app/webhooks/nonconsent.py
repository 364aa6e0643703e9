"""Provider events that are not consent.

A removal a user dismissed (a held Archive-All burst) is remembered per member and not applied
again (`app.contacts.rules.judge_event` → `EventVerdict.dismissed`).

A bounce (Mailchimp `cleaned`, Brevo hard bounce) is not consent either: onOffice keeps its
Newsletter value, an activity records the bounce (Brevo's hard bounce: when its activity is
switched on), and the ledger keeps the email from being sent again until it changes in onOffice
(`app.contacts.rules.decide_yes` → `Action.bounced`). Shared by `EventApplier` and
`BatchApplier`."""

from __future__ import annotations

from collections.abc import Sequence

from app.contacts.repository import provider_signal
from app.contacts.rules import bounce_known
from app.db.models import Connection, Contact
from app.webhooks.activities import OPTIONAL_ACTIVITIES
from onoffice_client.models import Address
from providers.base import ProviderEvent

ALREADY_RECORDED = "the bounce is already recorded"
DISMISSED_NOTE = "a user dismissed this member's removal (held Archive-All burst)"


def bounce_repeat(event: ProviderEvent, contact: Contact | None, steps: Sequence[str]) -> bool:
    """The ledger already records a bounce of this email (a redelivery): nothing to write. A
    full sync's write-back of a bounce it found first is not a repeat (it comes once)."""
    known = bounce_known(provider_signal(contact, None))
    return known and event.source != "reconcile" and not steps


def bounce_activity_ids(
    connection: Connection,
    event: ProviderEvent,
    contact: Contact | None,
    addresses: Sequence[Address],
) -> list[int]:
    """The addresses the bounce's activity goes to (none when its activity is switched off)."""
    option = OPTIONAL_ACTIVITIES.get(event.type)
    if option is not None and not (connection.activities or {}).get(option):
        return []
    return [a.id for a in addresses] or ([contact.address_id] if contact else [])
