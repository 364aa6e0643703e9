"""Why is a person (not) subscribed? The current decision of the consent rule for one email,
from its ledger row, and the rule that made it (pure; the history API renders it).

The person's onOffice signal comes from all of its addresses (`person.person_signal`), the
provider's from the ledger; the decision is the one the full sync and the push would make now
(`rules.decide_yes` for a Yes, the newer-signal rule otherwise)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from app.contacts.person import load_memory, person_signal
from app.contacts.rules import (
    EXPLICIT_NO,
    REMOVED_STATES,
    SUBSCRIBED,
    YES,
    Action,
    Signal,
    decide_yes,
    newer,
)
from app.db.models import Contact

# The rule codes (catalogue `history.rule.<code>`), and whether the rule keeps the person
# subscribed at the provider.
RULES: dict[str, bool] = {
    "onoffice_yes": True,
    "fresh_yes": True,
    "provider_subscribe_newer": True,
    "pending": False,
    "provider_opt_out_newer": False,
    "bounced": False,
    "archived": False,
    "removal_dismissed": False,
    "onoffice_opt_out": False,
    "left_onoffice": False,
    "onoffice_not_yes": False,
    "unknown": False,
}
_BY_ACTION = {
    Action.send: "onoffice_yes",
    Action.resubscribe: "fresh_yes",
    Action.write_back: "provider_opt_out_newer",
    Action.bounced: "bounced",
    Action.archived: "archived",
    Action.pending: "pending",
}


@dataclass(frozen=True)
class Verdict:
    rule: str
    subscribed: bool
    onoffice: str | None = None
    onoffice_at: datetime | None = None
    address_id: int | None = None
    provider: str | None = None
    provider_at: datetime | None = None


def _as(base: Verdict, rule: str) -> Verdict:
    return replace(base, rule=rule, subscribed=RULES[rule])


def explain(contact: Contact | None) -> Verdict:
    """The decision for this person now, and the rule that made it."""
    if contact is None:
        return Verdict("unknown", False)
    memory = load_memory(
        contact.onoffice_addresses,
        owner=contact.address_id,
        ledger=Signal(contact.onoffice_status, contact.onoffice_changed_at),
    )
    person = person_signal(memory)
    provider = Signal(contact.provider_status, contact.provider_changed_at)
    base = Verdict(
        "unknown", False, person.status, person.at, person.carrier, provider.status, provider.at
    )
    if person.status == YES:
        action = decide_yes(person.signal, provider)
        if action == Action.archived and contact.removal_dismissed_at is not None:
            return _as(base, "removal_dismissed")
        rule = _BY_ACTION[action]
        return _as(base, rule)
    if (
        provider.status == SUBSCRIBED
        and person.at is not None
        and provider.at is not None
        and newer(provider.at, person.at)
    ):
        return _as(base, "provider_subscribe_newer")
    if person.status in EXPLICIT_NO:
        return _as(base, "onoffice_opt_out")
    if person.status == "absent":
        return _as(base, "left_onoffice")
    if provider.status in REMOVED_STATES:
        return _as(base, "archived")
    return _as(base, "onoffice_not_yes")
