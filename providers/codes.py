"""The provider-neutral words of the boundary: why a contact was rejected, and a contact's state.

Each provider maps its own words onto them with tables (`providers/mailchimp/errors.py`,
`providers/brevo/errors.py`, the member-status tables of their reads); the app renders the
codes in the reader's language (`app/i18n/reasons.py`) and keeps the provider's own words only
as the labelled original (`UpsertResult.detail`).

Both are StrEnums: a `ProviderState` compares equal to the string the database stores, so
stored states stay the same strings.
"""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why the provider refused one contact of a write (`UpsertResult.code`)."""

    # The provider considers the address invalid, fake or a role address (Mailchimp "looks
    # fake or invalid"; Brevo: not a valid e-mail address).
    invalid_email = "invalid_email"
    # The contact unsubscribed, bounced or is under compliance review and may not be
    # re-subscribed through the API (Mailchimp "Member In Compliance State").
    compliance = "compliance"
    # The contact was permanently deleted and cannot be imported again (Mailchimp "Forgotten
    # Email Not Subscribed").
    forgotten = "forgotten"
    # The provider kept the contact's opt-out although a fresh consent lifted it (Brevo's
    # blacklist).
    blacklisted = "blacklisted"
    # The provider refuses more sign-ups of this address for now (Mailchimp: "signed up to a
    # lot of lists very recently").
    rate_limited = "rate_limited"
    # A merge field / attribute value was refused (Mailchimp "Your merge fields were invalid").
    merge_field = "merge_field"
    # The address appears twice, or another contact already has it (Mailchimp "Member
    # Exists", `ERROR_CONTACT_EXISTS`; Brevo `duplicate_parameter`).
    duplicate = "duplicate"
    # Some other part of the request was refused (Brevo `invalid_parameter`, ...).
    invalid_request = "invalid_request"
    # The contact was saved, but its tags could not be set.
    tags = "tags"
    # The provider's answer did not mention the contact.
    no_result = "no_result"
    # A refusal none of the tables knows: the provider's words tell it.
    unknown = "unknown"


class ProviderState(StrEnum):
    """A contact's state at the provider (`ProviderContact.status`, `UpsertResult.status`, the
    ledger's provider signal)."""

    subscribed = "subscribed"
    unsubscribed = "unsubscribed"
    # Waiting for the double opt-in confirmation (Mailchimp).
    pending = "pending"
    # Removed after hard bounces or complaints (Mailchimp).
    cleaned = "cleaned"
    # A hard bounce reported by an event (Brevo): not sent again.
    hard_bounce = "hard_bounce"
    # Archived (Mailchimp): not in the list's normal views, not billed.
    archived = "archived"
    # Deleted at the provider, or no such contact.
    deleted = "deleted"
    # Known to the account, but not (any more) in the connection's list (Brevo).
    not_in_list = "not_in_list"
    # Receives transactional emails only (Mailchimp).
    transactional = "transactional"
    # Blocked for every list of the account (Brevo's `emailBlacklisted`).
    blacklisted = "blacklisted"
    # A state the provider reports that no table knows.
    unknown = "unknown"
