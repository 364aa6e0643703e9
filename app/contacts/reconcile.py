"""The periodic reconciliation's decision (pure; no I/O): what one contact the provider changed
since the watermark means for onOffice, given what the ledger already knows.

The reconciliation reads the provider's own state (`NewsletterProvider.changed_since`), so what
it finds is the truth, not news. Each change becomes at most one event of the same kind a
webhook would bring, applied by the webhook applier through the consent rules:

* an opt-out (unsubscribed, Brevo blacklisted) or a bounce (cleaned) the ledger does not know;
* a subscribed contact the ledger does not know as subscribed: a re-subscribe (one that fired
  only `profile`), or a new sign-up, which becomes an onOffice address; a contact the ledger
  never knew counts as a sign-up only when it signed up within the window read (a member of
  long standing whose profile changed is not new);
* a removal (archived; Brevo: no longer in the list) of a contact the ledger knows as a
  subscriber: "not specified" in onOffice, under the Archive-All rule (many at once are held
  for a user).

What the ledger already records in the same kind is no news (Brevo moves `modifiedAt` on list
touches, the connector's own writes show up too), nor is a change whose webhook event of the
same kind is stored and not applied yet (during a burst of webhooks the reconciliation stored
thousands of them again); a contact the ledger never knew is only taken when it is in the list
(another list's contact of the same Brevo account is not ours).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from app.contacts.rules import PENDING, Signal, newer
from providers.base import ProviderEventType, ProviderState

_T = ProviderEventType
_S = ProviderState
NOT_IN_LIST = _S.not_in_list  # Brevo: the contact is no longer in the connection's list
KIND_OF_STATE: dict[str, ProviderEventType] = {
    _S.subscribed: _T.subscribe,
    _S.unsubscribed: _T.unsubscribe,
    _S.blacklisted: _T.unsubscribe,
    _S.cleaned: _T.cleaned,
    _S.hard_bounce: _T.cleaned,
    _S.archived: _T.deleted,
    _S.deleted: _T.deleted,
    NOT_IN_LIST: _T.deleted,
}


@dataclass(frozen=True)
class Found:
    """A contact as the provider shows it now."""

    status: str | None
    at: datetime | None
    # False when the provider lists it outside the connection's list (Brevo), else None/True.
    in_list: bool | None = None
    opted_in_at: datetime | None = None  # when it signed up (created), where known


def kind_of(status: str | None) -> ProviderEventType | None:
    return KIND_OF_STATE.get(status or "")


def reconcile_kind(
    found: Found,
    ledger: Signal | None,
    window_start: datetime,
    pending: Collection[str] = (),
) -> ProviderEventType | None:
    """The event to store for a changed contact (None: nothing onOffice has to learn).
    `ledger`: the ledger's provider signal, None when the ledger has no row for the email;
    `window_start`: the start of the window read (watermark minus the overlap); `pending`:
    the kinds of the contact's received events not applied yet."""
    kind = kind_of(found.status)
    if kind is None:
        return None  # pending double opt-in, transactional, unknown
    if kind.value in pending:
        return None  # a webhook told it; its event is stored and will be applied
    if ledger is None:
        if found.in_list is False or kind == _T.deleted:
            return None  # not ours: another list's contact, or never a member we knew
        if kind == _T.subscribe and (
            found.opted_in_at is None or newer(window_start, found.opted_in_at)
        ):
            return None  # a member of long standing whose profile changed: no sign-up
        return kind
    known = kind_of(ledger.status)
    if kind == known:
        return None  # the ledger already has it (a list touch, our own write, a redelivery)
    if kind == _T.deleted:
        # Only a subscriber's removal is news: "not specified" never overwrites an opt-out,
        # and a contact that never was in the list was not removed from it.
        return kind if known == _T.subscribe or ledger.status == PENDING else None
    return kind
