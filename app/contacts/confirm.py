"""Confirm before acting (pure functions; no I/O).

A provider webhook is news that a person's state may have changed; the provider's own current
state is the truth. Mailchimp signs nothing (its URL token is the only credential) and Brevo's
events carry no state of the list, so every event that would change consent or identity in
onOffice is confirmed against the state the drain read from the provider
(`NewsletterProvider.read_states`) and the signal applied comes from that state (its kind and
its time), never from the payload:

* subscribe (Mailchimp `subscribe`, Brevo `listAddition`): only when the provider shows the
  person subscribed in the connection's list. Only these may create an onOffice address.
* opt-outs and removals (`unsubscribe`, `cleaned`, archive/delete, Brevo `unsubscribed` and
  `contactDeleted`): when the provider shows an opt-out (unsubscribed, blacklisted, cleaned,
  archived, not in the list, or no such contact); what is applied is the state's own kind (an
  unsubscribe of a member that is archived by now is applied as a removal).
* profile changes (Mailchimp `profile`, Brevo `contact_updated`): they name no state, so the
  state decides: an opt-out, a blacklist or a removal from the list reaches onOffice at once; a
  subscribed member the connector knew as opted out re-subscribes its existing addresses
  (never a new one). A removal from the list
  counts only for a person the connector knows in the list (Brevo's contact events are
  account-wide).
* email changes (Mailchimp `upemail`, a Brevo `contact_updated` whose attributes carry another
  EMAIL): only when the old address is gone from the list and the new one is in it.

An event the state contradicts is "not confirmed": recorded with the reason, nothing changes.
The product's own write-backs (source "reconcile": the provider state a sync read; raw_type
"person": an onOffice decision) are not events to confirm, and activity-only events (delivered,
opened, clicked, hard bounce) may be logged from the payload but never change an address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.contacts.rules import SUBSCRIBED, Signal, is_opt_out
from providers.base import ProviderContact, ProviderEvent, ProviderEventType, ProviderState

_T = ProviderEventType
CONFIRMED_KINDS = frozenset(
    {_T.subscribe, _T.unsubscribe, _T.profile, _T.email_changed, _T.deleted, _T.cleaned}
)
OPT_OUT_KINDS = frozenset({_T.unsubscribe, _T.deleted, _T.cleaned})
# raw_type of the product's own stored decisions (app/contacts/ledger.py).
OWN_RAW_TYPES = frozenset({"reconcile", "person"})
NOT_CONFIRMED = "not confirmed"
# States of an address that is not (any more) in the connection's list.
GONE = frozenset({ProviderState.archived, ProviderState.not_in_list})


@dataclass(frozen=True)
class Confirmation:
    """What to apply (`event`, with the state's kind and time), or why nothing (`reason`)."""

    event: ProviderEvent | None
    reason: str | None = None
    # A new onOffice address may be created for it (a confirmed sign-up only).
    may_create: bool = False
    # Confirmed at a list the connection has left since (`confirmation_list`).
    other_list: bool = False


def needs_confirmation(event: ProviderEvent) -> bool:
    return event.type in CONFIRMED_KINDS and event.raw_type not in OWN_RAW_TYPES


def confirmation_list(
    event: ProviderEvent, connection_list: str, *, webhooks_per_list: bool
) -> str:
    """The list whose state confirms `event`. A webhook of a provider whose webhooks belong to
    one list (`webhooks_per_list`: Mailchimp) names the list it was made at; an event of a list
    the connection has left since (a held Archive-All burst, or an event a disconnect left
    pending, adopted after a switch or a reconnect) is about that list. Read at the
    connection's list it met the person's state in another audience ("subscribed" there), and a
    removal a user applied was "not confirmed" and lost (issue #17). Brevo's list ids name
    lists of one account-wide contact: its events are confirmed at the connection's list."""
    if webhooks_per_list and event.list_id and event.list_id != connection_list:
        return event.list_id
    return connection_list


def ledger_learns(confirmation: Confirmation | None, confirmed: Signal, ledger: Signal) -> Signal:
    """The provider state the connection's ledger records for an applied event: the confirmed
    one, except for an event of a list the connection has left: that list's state is not this
    list's, so the ledger keeps its own (recording "archived" there made the next full sync take
    a member still subscribed at this list for gone and never unsubscribe it as "left
    onOffice" after the removal's "not specified")."""
    if confirmation is not None and confirmation.other_list:
        return ledger
    return confirmed


def may_create(event: ProviderEvent, confirmation: Confirmation | None) -> bool:
    """Whether a sign-up may create a new onOffice address: one confirmed by the provider's
    state, or one the reconciliation stored (it read the member subscribed in the list)."""
    if confirmation is not None:
        return confirmation.may_create
    return event.raw_type == "reconcile" and event.type == _T.subscribe


def state_kind(state: ProviderContact | None) -> ProviderEventType | None:
    """The event kind a provider state amounts to (None: no consent signal, e.g. pending)."""
    if state is None:
        return _T.deleted
    status = state.status
    if status == SUBSCRIBED:
        return _T.subscribe
    if status in (ProviderState.unsubscribed, ProviderState.blacklisted):
        return _T.unsubscribe
    if status == ProviderState.cleaned:
        return _T.cleaned
    if status in (ProviderState.archived, ProviderState.not_in_list, ProviderState.deleted):
        return _T.deleted
    return None


def shown(state: ProviderContact | None) -> str:
    return "no such contact" if state is None else str(state.status or "an unknown state")


def confirm(
    event: ProviderEvent,
    state: ProviderContact | None,
    label: str,
    *,
    ledger: Signal = Signal(None),
    new_state: ProviderContact | None = None,
) -> Confirmation:
    """The signal to apply for `event` given the provider's current `state` of its email (and,
    for an email change, `new_state` of the new address); `ledger` is the provider state the
    connector last recorded for the email."""
    if not needs_confirmation(event):
        return Confirmation(event, may_create=event.type == _T.subscribe)
    if event.type == _T.email_changed:
        if new_state is None:
            return _no(f"{label} has no contact {event.new_email or '(no new address)'}")
        if new_state.status in GONE:
            return _no(f"{label} shows {event.new_email} {new_state.status}, not in the list")
        if state is not None and state.status not in GONE:
            return _no(f"{label} still has {event.email} ({shown(state)})")
        return Confirmation(event)
    kind = state_kind(state)
    if event.type == _T.subscribe:
        if kind != _T.subscribe:
            return _no(f"{label} shows {shown(state)}, not subscribed")
        return Confirmation(_as(event, _T.subscribe, state), may_create=True)
    if event.type in OPT_OUT_KINDS:
        if kind not in OPT_OUT_KINDS:
            return _no(f"{label} shows {shown(state)}, not an opt-out")
        assert kind is not None
        return Confirmation(_as(event, kind, state))
    # A profile change: the state decides.
    if state is None:
        return _no(f"{label} has no such contact")
    if kind is None:
        return Confirmation(event)  # nothing consent-related to apply ("profile" is ignored)
    if kind == _T.deleted and ledger.status != SUBSCRIBED:
        return Confirmation(event)  # not (known to be) in the list: nothing removed from it
    if kind == _T.subscribe and not is_opt_out(ledger.status):
        return Confirmation(event)  # no re-subscribe: nothing new about consent
    return Confirmation(_as(event, kind, state))


def _no(reason: str) -> Confirmation:
    return Confirmation(None, f"{NOT_CONFIRMED}: {reason}")


def _as(
    event: ProviderEvent, kind: ProviderEventType, state: ProviderContact | None
) -> ProviderEvent:
    """The event as the state tells it: the state's kind, at the state's time when known."""
    at = state.last_changed if state is not None and state.last_changed else event.occurred_at
    return event.model_copy(update={"type": kind, "occurred_at": at})


# What the provider showed, in the reasons `_no` writes: "… shows <status>, not …", "… shows
# <new address> <status>, not in the list", "… still has <address> (<status>)".
_SHOWN = re.compile(r" shows (?:\S+@\S+ )?(?P<shows>[^,]+), not | still has \S+ \((?P<has>[^)]+)\)")


def shown_in(reason: str) -> str:
    """What the provider showed, read back from a "not confirmed" reason of `confirm` (for
    the status page, which names it in the user's language): a status (`subscribed`,
    `not_in_list`, …), `none` (no such contact) or `unknown`."""
    if " has no such contact" in reason or " has no contact " in reason:
        return "none"
    found = _SHOWN.search(reason)
    if found is None:
        return "unknown"
    status = found["shows"] or found["has"]
    if status == "no such contact":
        return "none"
    return status if re.fullmatch(r"[a-z_]+", status) else "unknown"
